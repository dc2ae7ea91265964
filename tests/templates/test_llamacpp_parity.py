"""Our families against llama.cpp's own builtin templates, byte for byte, on random conversations."""

from __future__ import annotations

import zlib

import pytest
from _convgen import conversations

from rp_context.errors import TemplateError
from rp_context.templates import Message, c_trim, get_family
from rp_context.templates.llamacpp import llamacpp_apply_template, llamacpp_builtin_names

# our family -> llama.cpp builtin name
PAIRS = {
    "chatml": "chatml",
    "llama2": "llama2-sys",
    "llama3": "llama3",
    "mistral-v1": "mistral-v1",
    "mistral-v3": "mistral-v3",
    "mistral-v3-tekken": "mistral-v3-tekken",
    "mistral-v7": "mistral-v7",
    "mistral-v7-tekken": "mistral-v7-tekken",
    "gemma": "gemma",
    "phi3": "phi3",
    "zephyr": "zephyr",
    "vicuna": "vicuna",
    "command-r": "command-r",
}
N = 200


def _gemma_llamacpp_equivalent(msgs: list[Message]) -> list[Message]:
    """Where gemma's system text has no user turn after it, llama.cpp drops it and we give it a
    user turn of its own at the end: the llama.cpp render of that conversation is our render."""
    last_user = max((i for i, m in enumerate(msgs) if m.role == "user"), default=-1)
    trailing = [m for i, m in enumerate(msgs) if i > last_user and m.role == "system"]
    merged = "".join(c_trim(m.content) for m in trailing)
    if not merged:
        return msgs
    kept = [m for i, m in enumerate(msgs) if not (i > last_user and m.role == "system")]
    return [*kept, Message("user", merged)]


def test_llamacpp_knows_every_paired_name() -> None:
    names = set(llamacpp_builtin_names())
    assert set(PAIRS.values()) <= names


@pytest.mark.parametrize("family", sorted(PAIRS))
def test_family_equals_llamacpp_builtin(family: str) -> None:
    template = get_family(family)
    builtin = PAIRS[family]
    compared = 0
    for conv in conversations(zlib.crc32(family.encode()), N):
        for agp in (True, False):
            ours = template.render(conv, agp).text
            if family == "gemma":
                expected = llamacpp_apply_template(builtin, _gemma_llamacpp_equivalent(conv), agp)
                if expected != llamacpp_apply_template(builtin, conv, agp):
                    # the deviation: text llama.cpp would drop is kept, as the last user turn
                    assert all(c_trim(m.content) in ours for m in conv)
            else:
                expected = llamacpp_apply_template(builtin, conv, agp)
            assert ours == expected, (family, agp, conv)
            compared += 1
    assert compared == 2 * N


def test_unknown_builtin_raises() -> None:
    with pytest.raises(TemplateError):
        llamacpp_apply_template("alpaca", [Message("user", "hi")])


def test_unicode_whitespace_follows_llamacpp() -> None:
    # C isspace() does not strip U+00A0 / U+3000; Python's str.strip() would.
    conv = [Message("user", "\u3000hi\u00a0 ")]
    for family in ("llama3", "gemma", "command-r"):
        ours = get_family(family).render(conv).text
        assert ours == llamacpp_apply_template(PAIRS[family], conv)
        assert "\u3000hi\u00a0" in ours
