"""A chat's KV cache kept across restarts, whichever backend runs it.

In process (`LlamaBackend`) the state is a file beside the chat (`.kvstate/NAME.rpkv`, see
`kvstate`); on llama.cpp's server it is the chat's slot saved to the server's disk, under a name
made from the chat file. `restore_chat` runs when a chat is opened, `save_chat` after each reply.
Neither ever fails the chat: a problem comes back as a warning line.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from ..errors import RPContextError
from .kvstate import DEFAULT_LIMIT_MB, chat_state_path, prune

__all__ = ["chat_key", "attach_chat", "restore_chat", "save_chat", "DEFAULT_LIMIT_MB"]


def chat_key(chat_path: str | Path) -> str:
    """The name a chat's state goes by on a server: the file's stem and a hash of its full path."""
    p = Path(chat_path).expanduser().resolve()
    digest = hashlib.sha1(str(p).encode("utf-8")).hexdigest()[:10]
    return f"rpctx-{p.stem}-{digest}"


def _in_process(backend: Any) -> bool:
    return callable(getattr(backend, "restore_state", None)) and callable(
        getattr(backend, "save_state", None))


def _on_server(backend: Any) -> bool:
    return callable(getattr(backend, "restore_chat_state", None)) and hasattr(backend, "chat")


def attach_chat(backend: Any, chat_path: str | Path) -> None:
    """Tell a server backend which chat it speaks for (its slot and slot file follow the chat)."""
    if _on_server(backend) and not _in_process(backend):
        backend.chat = chat_key(chat_path)


def restore_chat(backend: Any, chat_path: str | Path) -> tuple[int, str | None]:
    """Load the chat's saved state into `backend`: (tokens restored, warning or None)."""
    try:
        if _in_process(backend):
            return backend.restore_state(chat_state_path(chat_path))
        if _on_server(backend):
            backend.chat = chat_key(chat_path)
            return backend.restore_chat_state(), None
    except (RPContextError, OSError) as exc:
        return 0, f"KV state not restored: {exc}"
    return 0, None


def save_chat(backend: Any, chat_path: str | Path, *, limit_mb: int = DEFAULT_LIMIT_MB
              ) -> str | None:
    """Save the chat's state after a reply (in process: then keep the folder under `limit_mb`,
    oldest states first); returns a warning, or None."""
    try:
        if _in_process(backend):
            path = chat_state_path(chat_path)
            path.parent.mkdir(parents=True, exist_ok=True)
            backend.save_state(path)
            prune(path.parent, limit_mb * 1024 * 1024, keep=path)
        elif _on_server(backend):
            if backend.chat is None:
                backend.chat = chat_key(chat_path)
            backend.save_chat_state()
            pool = getattr(backend, "pool", None)
            return getattr(pool, "warning", None)
    except (RPContextError, OSError) as exc:
        return f"KV state not saved: {exc}"
    return None
