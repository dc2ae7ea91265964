"""KV state files: a chat's processed prompt saved to disk, so reopening it needs no re-processing.

File layout: the magic line `RPKV1\\n`, an 8-byte little-endian header length, a JSON header
(format, the model's identity, cache settings, the token ids the state holds), then the raw
sequence state from llama.cpp. Written atomically. A file that does not match the loaded model
and settings is refused with `KVStateMismatch`, which the backend turns into a normal run.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from ..atomic import write_bytes_atomic

__all__ = ["KVStateHeader", "KVStateMismatch", "model_fingerprint", "write_state", "read_state"]

MAGIC = b"RPKV1\n"
FORMAT = 1
_FINGERPRINT_BYTES = 4 * 1024 * 1024


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
