"""CHARX: a zip with `card.json` (V3) at its root and the card's assets beside it.

Nothing is extracted to disk: members are read into memory through a counting reader, so a zip
bomb (tiny archive, huge members, or headers that lie about sizes) is refused before it can
fill memory. Members other than `card.json` are kept byte for byte and written back.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from ..errors import CardError
from ._base import Warn

__all__ = ["CharxContents", "read_charx", "write_charx", "CARD_JSON"]

CARD_JSON = "card.json"
_STORED_EXTS = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".avif", ".mp3", ".ogg", ".mp4", ".webm", ".zip")
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass
class CharxContents:
    card_json: bytes
    assets: dict[str, bytes]


def read_charx(
    data: bytes,
    path: Path | None,
    warn: Warn,
    *,
    max_card_json: int,
    max_unpacked: int,
    max_members: int,
) -> CharxContents:
    """The `card.json` bytes and every other member of a CHARX archive."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise CardError(path, f"not a CHARX: the file is not a readable zip ({exc})") from exc
    except (OSError, ValueError) as exc:  # pragma: no cover - odd headers
        raise CardError(path, f"not a CHARX: damaged zip ({exc})") from exc
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        if len(infos) > max_members:
            raise CardError(
                path, f"the CHARX has {len(infos)} members, more than the limit of {max_members}"
            )
        by_name = {i.filename: i for i in infos}
        if len(by_name) != len(infos):
            warn("the CHARX has members with the same name; the last one of each was kept")
        card_info = by_name.get(CARD_JSON)
        if card_info is None:
            lower = {name.lower(): info for name, info in by_name.items()}
            card_info = lower.get(CARD_JSON)
            if card_info is None:
                raise CardError(path, "a zip without card.json at its root is not a CHARX")
            warn(f"the CHARX names its card {card_info.filename!r}, not card.json; read it anyway")
        for info in infos:
            if info.flag_bits & 0x1:
                raise CardError(path, f"the CHARX member {info.filename!r} is encrypted")
        declared = sum(i.file_size for i in by_name.values())
        if declared > max_unpacked:
            raise CardError(
                path,
                f"the CHARX would unpack to {_mib(declared)}, past the {_mib(max_unpacked)} "
                "limit (a zip bomb?); refused",
            )
        if card_info.file_size > max_card_json:
            raise CardError(path, f"the CHARX's card.json is larger than {_mib(max_card_json)}; refused")
        budget = [max_unpacked]
        card_json = _read_member(zf, card_info, path, budget, min(max_card_json, max_unpacked))
        assets: dict[str, bytes] = {}
        for name, info in by_name.items():
            if info is card_info:
                continue
            if not name.isascii():
                warn(f"the CHARX member {name!r} has a non-ASCII name")
            assets[name] = _read_member(zf, info, path, budget, max_unpacked)
    return CharxContents(card_json, assets)


def _read_member(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path | None, budget: list[int], limit: int
) -> bytes:
    """Read one member, counting real bytes: stop at its declared size, the limit or the budget."""
    allowed = min(info.file_size, limit, budget[0])
    out = bytearray()
    try:
        with zf.open(info) as fh:
            while True:
                block = fh.read(min(1 << 20, allowed - len(out) + 1))
                if not block:
                    break
                out += block
                if len(out) > allowed:
                    raise CardError(
                        path,
                        f"the CHARX member {info.filename!r} unpacks past its declared size or the "
                        "size limit (a zip bomb?); refused",
                    )
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
        raise CardError(path, f"the CHARX member {info.filename!r} is damaged ({exc})") from exc
    except NotImplementedError as exc:
        raise CardError(path, f"the CHARX member {info.filename!r} uses an unsupported compression") from exc
    budget[0] -= len(out)
    return bytes(out)


def safe_member_name(name: str) -> bool:
    """Whether a zip member name stays inside the folder it is unpacked to (no `..`, no root,
    no drive, no backslash, no control character)."""
    if not name or name.startswith(("/", "\\")) or "\\" in name or ":" in name:
        return False
    if any(ord(ch) < 32 for ch in name):
        return False
    return all(part not in ("", ".", "..") for part in name.rstrip("/").split("/"))


def write_charx(card_json: bytes, assets: dict[str, bytes], warn: Warn | None = None) -> bytes:
    """A CHARX archive: `card.json` first, then the assets in their given order. Members whose
    names would unpack outside the archive's folder (`../../evil.txt`) are dropped, with a warning."""
    unsafe = [name for name in assets if not safe_member_name(name)]
    if unsafe and warn is not None:
        shown = ", ".join(repr(n) for n in unsafe[:3]) + (", ..." if len(unsafe) > 3 else "")
        warn(f"{len(unsafe)} CHARX member(s) with unsafe paths were left out ({shown})")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, payload in [(CARD_JSON, card_json), *((n, p) for n, p in assets.items() if n not in unsafe)]:
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.compress_type = (
                zipfile.ZIP_STORED if name.lower().endswith(_STORED_EXTS) else zipfile.ZIP_DEFLATED
            )
            info.external_attr = 0o644 << 16
            zf.writestr(info, payload)
    return buf.getvalue()


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB"
