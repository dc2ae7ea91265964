"""Building test card files by hand: PNG chunks of every kind, CHARX zips, sample card dicts."""

from __future__ import annotations

import base64
import io
import json
import struct
import zipfile
import zlib
from typing import Any

from PIL import Image

SIG = b"\x89PNG\r\n\x1a\n"


def chunk(ctype: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + ctype + data + struct.pack(">I", zlib.crc32(ctype + data))


def b64(obj: Any) -> str:
    return base64.b64encode(json.dumps(obj).encode("utf-8")).decode("ascii")


def text_chunk(keyword: str, text: str, kind: str = "tEXt") -> bytes:
    key = keyword.encode("latin-1") + b"\0"
    if kind == "tEXt":
        return chunk(b"tEXt", key + text.encode("latin-1"))
    if kind == "zTXt":
        return chunk(b"zTXt", key + b"\0" + zlib.compress(text.encode("latin-1")))
    if kind == "iTXt":
        return chunk(b"iTXt", key + b"\0\0" + b"en\0" + b"\0" + text.encode("utf-8"))
    if kind == "iTXt-z":
        return chunk(b"iTXt", key + b"\1\0" + b"\0" + b"\0" + zlib.compress(text.encode("utf-8")))
    raise ValueError(kind)


def base_png(size: tuple[int, int] = (8, 12), color: tuple[int, int, int] = (200, 80, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def split_png(png: bytes) -> list[bytes]:
    """The raw chunks of a PNG (without the signature)."""
    out, pos = [], 8
    while pos < len(png):
        (n,) = struct.unpack(">I", png[pos : pos + 4])
        out.append(png[pos : pos + 12 + n])
        pos += 12 + n
    return out


def chunk_types(png: bytes) -> list[str]:
    return [c[4:8].decode() for c in split_png(png)]


def png_with(*extra: bytes, after_idat: bool = False, base: bytes | None = None) -> bytes:
    """A small real PNG with `extra` chunks before IDAT (or after it, before IEND)."""
    chunks = split_png(base or base_png())
    ihdr, rest = chunks[0], chunks[1:]
    if after_idat:
        return SIG + ihdr + b"".join(rest[:-1]) + b"".join(extra) + rest[-1]
    return SIG + ihdr + b"".join(extra) + b"".join(rest)


def charx(members: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def v2(name: str = "Ada", **data: Any) -> dict[str, Any]:
    body = {
        "name": name,
        "description": f"{name} is a test character.",
        "personality": "curious",
        "scenario": "",
        "first_mes": "Hello.",
        "mes_example": "",
        "creator_notes": "",
        "system_prompt": "",
        "post_history_instructions": "",
        "alternate_greetings": [],
        "tags": [],
        "creator": "tests",
        "character_version": "1",
        "extensions": {},
    }
    body.update(data)
    return {"spec": "chara_card_v2", "spec_version": "2.0", "data": body}


def v3(name: str = "Ada", **data: Any) -> dict[str, Any]:
    card = v2(name, **{"group_only_greetings": [], **data})
    card["spec"], card["spec_version"] = "chara_card_v3", "3.0"
    return card
