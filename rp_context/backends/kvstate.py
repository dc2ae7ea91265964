"""KV state files: a chat's processed prompt saved to disk, so reopening it needs no re-processing.

File layout: the magic line `RPKV1\\n`, an 8-byte little-endian header length, a JSON header
(format, the model's identity, cache settings, the token ids the state holds), then the raw
sequence state from llama.cpp. Written atomically. A file that does not match the loaded model
and settings is refused with `KVStateMismatch`, which the backend turns into a normal run (and
a warning). A chat's state lives beside the chat, in `.kvstate/` (`chat_state_path`); that
folder is kept under a size limit, oldest states first (`prune`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import struct
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from ..atomic import write_bytes_atomic

__all__ = [
    "KVStateHeader",
    "KVStateMismatch",
    "model_fingerprint",
    "write_state",
    "read_state",
    "chat_state_path",
    "prune",
    "STATE_DIR",
    "DEFAULT_LIMIT_MB",
]

MAGIC = b"RPKV1\n"
FORMAT = 2
_FINGERPRINT_BYTES = 4 * 1024 * 1024
STATE_DIR = ".kvstate"
"""Folder beside the chat files that holds their KV states."""
SUFFIX = ".rpkv"
DEFAULT_LIMIT_MB = 4096
"""Default size limit of one `.kvstate` folder; the oldest states go first."""


class KVStateMismatch(Exception):
    """The state file is unreadable, or was made by another model or cache setting."""


class KVStateHeader(BaseModel):
    """What a state file must match before it is loaded."""

    format: int = FORMAT
    model: str
    """`model_fingerprint` of the GGUF file."""
    n_ctx: int
    type_k: int
    type_v: int
    flash_attn: bool = False
    tokens: list[int]


def model_fingerprint(path: str | Path) -> str:
    """A cheap identity of a GGUF file: its name, size and a hash of its first 4 MiB."""
    p = Path(path)
    h = hashlib.sha256()
    with p.open("rb") as fh:
        h.update(fh.read(_FINGERPRINT_BYTES))
    return f"{p.name}:{p.stat().st_size}:{h.hexdigest()[:16]}"


def write_state(path: str | Path, header: KVStateHeader, state: bytes) -> Path:
    """Write header and state bytes to `path` atomically."""
    head = header.model_dump_json().encode("utf-8")
    return write_bytes_atomic(path, MAGIC + struct.pack("<Q", len(head)) + head + state)


def read_state(path: str | Path, expect: dict[str, Any]) -> tuple[KVStateHeader, bytes]:
    """Read a state file; raise KVStateMismatch unless its header matches `expect` key by key."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise KVStateMismatch(f"{p}: cannot read ({exc.strerror or exc})") from exc
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 8:
        raise KVStateMismatch(f"{p}: not an rp-context KV state file")
    (n,) = struct.unpack_from("<Q", data, len(MAGIC))
    start = len(MAGIC) + 8
    if start + n > len(data):
        raise KVStateMismatch(f"{p}: truncated header")
    try:
        header = KVStateHeader.model_validate(json.loads(data[start : start + n]))
    except (ValueError, ValidationError) as exc:
        raise KVStateMismatch(f"{p}: bad header ({exc})") from exc
    if header.format != FORMAT:
        raise KVStateMismatch(f"{p}: format {header.format}, expected {FORMAT}")
    for key, want in expect.items():
        got = getattr(header, key)
        if got != want:
            raise KVStateMismatch(f"{p}: {key} is {got!r}, this backend has {want!r}")
    return header, data[start + n :]


def chat_state_path(chat_path: str | Path) -> Path:
    """Where the KV state of the chat saved at `chat_path` lives: `.kvstate/NAME.rpkv` beside it."""
    p = Path(chat_path)
    return p.parent / STATE_DIR / (p.name + SUFFIX)


def prune(folder: str | Path, limit_bytes: int, *, keep: Path | None = None) -> list[Path]:
    """Delete the oldest state files in `folder` until they total at most `limit_bytes`
    (never `keep`, the one just written); returns the deleted paths."""
    files = []
    for f in Path(folder).glob(f"*{SUFFIX}"):
        with contextlib.suppress(OSError):
            st = f.stat()
            files.append((st.st_mtime, st.st_size, f))
    total = sum(size for _, size, _ in files)
    removed: list[Path] = []
    for _, size, f in sorted(files, key=lambda t: t[0]):
        if total <= limit_bytes:
            break
        if keep is not None and f.resolve() == keep.resolve():
            continue
        with contextlib.suppress(OSError):
            f.unlink()
            total -= size
            removed.append(f)
    return removed
