"""Card data inside PNG files: `chara` (V2) and `ccv3` (V3) text chunks, base64 of UTF-8 JSON.

Reading walks the chunks itself, because Pillow only reports text chunks placed before IDAT
until the whole image is decoded, and never says which chunk type a value came from. It accepts
tEXt, zTXt and iTXt, any keyword case (`Chara`), and chunks after IDAT; `ccv3` wins over
`chara`. Writing keeps every other chunk of the image byte for byte and puts both card chunks
before IEND. Pillow handles the pixels: converting a JPEG or WebP avatar, drawing a placeholder.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import CardError
from ..files import decode_text
from ._base import Warn

__all__ = [
    "PNG_SIGNATURE",
    "CardChunk",
    "PngChunk",
    "decode_payload",
    "embed_card_chunks",
    "find_card_chunks",
    "iter_chunks",
    "placeholder_png",
    "to_png",
]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CARD_KEYWORDS = ("ccv3", "chara")
_TEXT_TYPES = (b"tEXt", b"zTXt", b"iTXt")
_CRITICAL = (b"IHDR", b"PLTE", b"IDAT", b"IEND")
_CHUNK_TYPE = re.compile(rb"^[A-Za-z]{4}$")


@dataclass(frozen=True)
class PngChunk:
    type: bytes
    data: bytes
    offset: int
    crc_ok: bool

    def raw(self) -> bytes:
        body = self.type + self.data
        return struct.pack(">I", len(self.data)) + body + struct.pack(">I", zlib.crc32(body))


@dataclass(frozen=True)
class CardChunk:
    keyword: str
    """The keyword as written in the file (`chara`, `Chara`, `ccv3`, ...)."""
    chunk_type: str
    text: str
    offset: int
    crc_ok: bool


def iter_chunks(data: bytes, path: Path | None, warn: Warn) -> Iterator[PngChunk]:
    """Every chunk from IHDR to IEND; truncated or non-PNG data raises CardError."""
    if not data.startswith(PNG_SIGNATURE):
        if len(data) < len(PNG_SIGNATURE) and PNG_SIGNATURE.startswith(data):
            raise CardError(path, "truncated PNG: the file ends inside the PNG signature")
        raise CardError(path, "not a PNG file (no PNG signature)")
    pos = len(PNG_SIGNATURE)
    first = True
    while True:
        if pos >= len(data):
            raise CardError(path, f"truncated PNG: the file ends at byte {len(data)} before IEND")
        if pos + 8 > len(data):
            raise CardError(path, f"truncated PNG: the file ends inside a chunk header at byte {pos}")
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        ctype = data[pos + 4 : pos + 8]
        if not _CHUNK_TYPE.match(ctype) or length > 0x7FFFFFFF:
            raise CardError(path, f"corrupt PNG: no valid chunk at byte {pos}")
        if first and ctype != b"IHDR":
            raise CardError(path, f"corrupt PNG: the first chunk is {ctype.decode()}, not IHDR")
        first = False
        end = pos + 12 + length
        if end > len(data):
            raise CardError(
                path,
                f"truncated PNG: the {ctype.decode()} chunk at byte {pos} needs {length} bytes "
                f"but the file ends at byte {len(data)}",
            )
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : end])
        crc_ok = zlib.crc32(ctype + body) == crc
        if not crc_ok and ctype in _CRITICAL:
            warn(f"the PNG's {ctype.decode()} chunk at byte {pos} fails its CRC: the image may be damaged")
        yield PngChunk(ctype, body, pos, crc_ok)
        pos = end
        if ctype == b"IEND":
            break
    if pos < len(data):
        warn(f"{len(data) - pos} bytes after the PNG's IEND chunk were ignored")


def _text_chunk(chunk: PngChunk, max_text: int) -> tuple[str, str] | None:
    """(keyword, text) of a tEXt/zTXt/iTXt chunk; None when it is malformed."""
    keyword, sep, rest = chunk.data.partition(b"\0")
    if not sep or not keyword:
        return None
    key = keyword.decode("latin-1")
    if chunk.type == b"tEXt":
        return key, rest.decode("latin-1")
    if chunk.type == b"zTXt":
        if not rest or rest[0] != 0:
            return None
        return key, _inflate(rest[1:], max_text).decode("latin-1")
    # iTXt: flag, method, language\0, translated keyword\0, UTF-8 text
    if len(rest) < 2:
        return None
    flag, method = rest[0], rest[1]
    _lang, sep1, rest = rest[2:].partition(b"\0")
    _translated, sep2, text = rest.partition(b"\0")
    if not (sep1 and sep2):
        return None
    if flag:
        if method != 0:
            return None
        text = _inflate(text, max_text)
    return key, text.decode("utf-8", errors="replace")


def _inflate(data: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise ValueError(f"bad zlib data ({exc})") from exc
    if len(out) > limit:
        raise OverflowError(limit)
    return out


def find_card_chunks(
    data: bytes, path: Path | None, warn: Warn, *, max_text: int
) -> dict[str, CardChunk]:
    """The first `ccv3` and `chara` text chunks (keyword case ignored), by lower-case keyword."""
    found: dict[str, CardChunk] = {}
    skipped: set[str] = set()
    for chunk in iter_chunks(data, path, warn):
        if chunk.type not in _TEXT_TYPES:
            continue
        head = chunk.data[:6].split(b"\0", 1)[0].decode("latin-1").lower()
        if head not in CARD_KEYWORDS:
            continue
        if head in found:
            skipped.add(head)  # a later copy is never used: do not inflate it
            continue
        try:
            parsed = _text_chunk(chunk, max_text)
        except OverflowError as exc:
            raise CardError(
                path, f"the {head!r} chunk inflates past {_mib(max_text)}; refused as too large"
            ) from exc
        except ValueError as exc:
            warn(f"the {chunk.type.decode()} {head!r} chunk at byte {chunk.offset} is unreadable: {exc}")
            continue
        if parsed is None:
            warn(f"the {chunk.type.decode()} chunk at byte {chunk.offset} is malformed; skipped")
            continue
        keyword, text = parsed
        lower = keyword.lower()
        if lower in found:
            skipped.add(lower)
            continue
        if not chunk.crc_ok:
            warn(f"the {keyword!r} chunk at byte {chunk.offset} fails its CRC; read it anyway")
        found[lower] = CardChunk(keyword, chunk.type.decode(), text, chunk.offset, chunk.crc_ok)
    for dup in sorted(skipped):
        warn(f"the PNG has more than one {dup!r} chunk; used the first")
    return found


def decode_payload(chunk: CardChunk, path: Path | None, warn: Warn, *, max_bytes: int) -> str:
    """The JSON text of a card chunk: base64 (lenient about padding and line breaks) of UTF-8."""
    name = f"the {chunk.keyword!r} chunk"
    text = chunk.text.strip()
    if text.startswith("{"):
        warn(f"{name} holds plain JSON instead of base64; read it as is")
        return text
    compact = re.sub(r"\s+", "", text)
    if not compact:
        raise CardError(path, f"{name} is empty")
    if "-" in compact or "_" in compact:
        compact = compact.replace("-", "+").replace("_", "/")
    compact = compact.rstrip("=")
    if len(compact) % 4 == 1:
        raise CardError(path, f"bad base64 in {name}: its length is impossible for base64")
    if len(compact) * 3 // 4 > max_bytes:
        raise CardError(path, f"{name} is larger than {_mib(max_bytes)}; refused")
    try:
        raw = base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CardError(path, f"bad base64 in {name}: {exc}") from exc
    return decode_text(path, raw, error=CardError, what=name, warn=warn)


def embed_card_chunks(png: bytes, texts: dict[str, str], path: Path | None = None) -> bytes:
    """`png` with its old card chunks removed and a tEXt chunk per `texts` item before IEND."""
    out = [PNG_SIGNATURE]
    for chunk in iter_chunks(png, path, lambda _msg: None):
        if chunk.type in _TEXT_TYPES:
            keyword = chunk.data.split(b"\0", 1)[0].decode("latin-1").lower()
            if keyword in CARD_KEYWORDS:
                continue
        if chunk.type == b"IEND":
            for keyword, text in texts.items():
                body = keyword.encode("latin-1") + b"\0" + text.encode("latin-1")
                out.append(PngChunk(b"tEXt", body, 0, True).raw())
        out.append(png[chunk.offset : chunk.offset + 12 + len(chunk.data)])  # byte for byte
    return b"".join(out)


def to_png(image: bytes, path: Path | None = None) -> bytes:
    """`image` as PNG bytes: PNG stays byte for byte; JPEG, WebP, GIF... are converted by Pillow."""
    if image.startswith(PNG_SIGNATURE):
        return image
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(image)) as im:
            im.load()
            if im.mode not in ("RGB", "RGBA", "L", "LA", "P"):
                im = im.convert("RGBA")
            buf = io.BytesIO()
            im.save(buf, format="PNG")
            return buf.getvalue()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise CardError(path, f"the avatar image cannot be read: {exc}") from exc


def image_size(image: bytes) -> tuple[int, int] | None:
    """(width, height) of an image Pillow can identify, without decoding its pixels."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(image)) as im:
            return im.size
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        return None


def placeholder_png(name: str, size: tuple[int, int] = (400, 600)) -> bytes:
    """A plain portrait-shaped avatar with the character's initials, for cards without an image."""
    import hashlib

    from PIL import Image, ImageDraw, ImageFont

    digest = hashlib.sha256(name.encode("utf-8")).digest()
    hue = digest[0] / 255.0
    top = _hsv(hue, 0.45, 0.55)
    bottom = _hsv((hue + 0.08) % 1.0, 0.55, 0.22)
    w, h = size
    im = Image.new("RGB", size, top)
    draw = ImageDraw.Draw(im)
    for y in range(h):
        t = y / max(1, h - 1)
        draw.line([(0, y), (w, y)], fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)))
    initials = "".join(part[0] for part in name.split()[:2]).upper() or "?"
    try:
        font = ImageFont.load_default(size=w // 4)
    except TypeError:  # Pillow < 10.1
        font = ImageFont.load_default()
    draw.text((w / 2, h / 2), initials, fill=(245, 240, 230), font=font, anchor="mm")
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _hsv(h: float, s: float, v: float) -> tuple[int, int, int]:
    import colorsys

    r, g, b = colorsys.hsv_to_rgb(h, s, v)
    return int(r * 255), int(g * 255), int(b * 255)


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):g} MiB"
