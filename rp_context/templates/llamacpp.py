"""llama.cpp's builtin template engine (`llama_chat_apply_template`), called through ctypes.

It needs no model. Used as an independent oracle in tests and by `rp-context format` users who
want to see what llama.cpp itself would send.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterable
from typing import Any

from ..errors import TemplateError
from .model import as_messages

__all__ = ["llamacpp_apply_template", "llamacpp_builtin_names"]


def llamacpp_builtin_names() -> list[str]:
    """The names of llama.cpp's builtin templates."""
    from .._llama import import_llama_cpp

    lc = import_llama_cpp()
    n = int(lc.llama_chat_builtin_templates(None, 0))
    arr = (ctypes.c_char_p * n)()
    lc.llama_chat_builtin_templates(arr, n)
    return [arr[i].decode() for i in range(n)]


def llamacpp_apply_template(name: str, messages: Iterable[Any], add_generation_prompt: bool = True) -> str:
    """The prompt llama.cpp's builtin template `name` makes of `messages` (no BOS, as llama.cpp).

    Raises TemplateError when llama.cpp does not know the template or content holds a NUL byte.
    """
    from .._llama import import_llama_cpp

    lc = import_llama_cpp()
    msgs = as_messages(messages)
    encoded = [(m.role.encode(), m.content.encode("utf-8")) for m in msgs]
    if any(b"\x00" in c or b"\x00" in r for r, c in encoded):
        raise TemplateError("llama.cpp cannot pass a NUL character in a message")
    arr = (lc.llama_chat_message * max(len(encoded), 1))(
        *[lc.llama_chat_message(r, c) for r, c in encoded]
    )
    tmpl = name.encode()
    n = int(lc.llama_chat_apply_template(tmpl, arr, len(encoded), add_generation_prompt, None, 0))
    if n < 0:
        raise TemplateError(f"llama.cpp has no builtin template {name!r}")
    buf = ctypes.create_string_buffer(n + 1)
    lc.llama_chat_apply_template(tmpl, arr, len(encoded), add_generation_prompt, buf, n + 1)
    return buf.raw[:n].decode("utf-8")
