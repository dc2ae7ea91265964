"""Rewrite one string in a GGUF's metadata (a hostile `tokenizer.chat_template`) for tests."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path
from typing import BinaryIO

_FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING, _ARRAY = 8, 9


def _skip_value(fh: BinaryIO, vtype: int) -> None:
    if vtype in _FIXED:
        fh.seek(_FIXED[vtype], 1)
    elif vtype == _STRING:
        (n,) = struct.unpack("<Q", fh.read(8))
        fh.seek(n, 1)
    elif vtype == _ARRAY:
        etype, count = struct.unpack("<IQ", fh.read(12))
        if etype in _FIXED:
            fh.seek(_FIXED[etype] * count, 1)
        else:
            for _ in range(count):
                _skip_value(fh, etype)
    else:
        raise ValueError(f"unknown GGUF value type {vtype}")


def _string(text: str) -> bytes:
    data = text.encode("utf-8")
    return struct.pack("<Q", len(data)) + data


def with_metadata_string(src: Path, dst: Path, key: str, value: str) -> Path:
    """A copy of the GGUF `src` at `dst` whose string `key` is `value` (added if missing)."""
    with src.open("rb") as fh:
        magic, version, n_tensors, n_kv = struct.unpack("<4sIQQ", fh.read(24))
        assert magic == b"GGUF" and version >= 2
        kvs: list[bytes] = []
        alignment = 32
        found = False
        for _ in range(n_kv):
            start = fh.tell()
            (klen,) = struct.unpack("<Q", fh.read(8))
            name = fh.read(klen).decode("utf-8")
            (vtype,) = struct.unpack("<I", fh.read(4))
            vstart = fh.tell()
            _skip_value(fh, vtype)
            end = fh.tell()
            if name == "general.alignment":
                fh.seek(vstart)
                (alignment,) = struct.unpack("<I", fh.read(4))
                fh.seek(end)
            if name == key:
                found = True
                kvs.append(_string(key) + struct.pack("<I", _STRING) + _string(value))
            else:
                fh.seek(start)
                kvs.append(fh.read(end - start))
        if not found:
            kvs.append(_string(key) + struct.pack("<I", _STRING) + _string(value))
        infos_start = fh.tell()
        for _ in range(n_tensors):
            (nlen,) = struct.unpack("<Q", fh.read(8))
            fh.seek(nlen, 1)
            (ndims,) = struct.unpack("<I", fh.read(4))
            fh.seek(8 * ndims + 4 + 8, 1)
        infos_end = fh.tell()
        fh.seek(infos_start)
        infos = fh.read(infos_end - infos_start)
        data_start = infos_end + (-infos_end % alignment)
        head = struct.pack("<4sIQQ", magic, version, n_tensors, len(kvs)) + b"".join(kvs) + infos
        head += b"\0" * (-len(head) % alignment)
        fh.seek(data_start)
        with dst.open("wb") as out:
            out.write(head)
            shutil.copyfileobj(fh, out, 16 * 1024 * 1024)
    return dst
