"""Read and write character cards: JSON (V1/V2/V3), PNG, CHARX and rp-context's YAML.

    loaded = load_card("cards/wren-halloway.json")      # any format, any spec
    loaded.card.data.name, loaded.warnings              # the repairs made, for people to read
    save_card(loaded, "wren.png")                        # writes `chara` (V2) and `ccv3` (V3)

Every problem is a `CardError` naming the file; every save is atomic.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from ..atomic import write_bytes_atomic
from ..errors import CardError
from ..files import decode_text, read_limited
from ..safeload import flat_name, loads_json
from ._base import Warn
from ._yaml import dump_yaml, load_yaml
from .charx import read_charx, write_charx
from .model import Asset, Card, SpecName, card_spec, card_to_dict
from .png import (
    PNG_SIGNATURE,
    decode_payload,
    embed_card_chunks,
    find_card_chunks,
    placeholder_png,
    to_png,
)

__all__ = [
    "CardFile",
    "CardFormat",
    "CardLimits",
    "DEFAULT_LIMITS",
    "card_from_bytes",
    "card_to_bytes",
    "detect_card_format",
    "load_card",
    "save_card",
    "YAML_KIND",
]

CardFormat = Literal["json", "png", "charx", "yaml"]
FORMATS: tuple[CardFormat, ...] = ("json", "png", "charx", "yaml")
YAML_KIND = "card"
YAML_VERSION = 1
_SUFFIXES: dict[str, CardFormat] = {
    ".json": "json",
    ".png": "png",
    ".apng": "png",
    ".charx": "charx",
    ".yaml": "yaml",
    ".yml": "yaml",
}
_YAML_RESERVED = ("kind", "version", "top_level", "crlf_fields")
_MIB = 1024 * 1024


@dataclass(frozen=True)
class CardLimits:
    """Size guards: a card larger than these is refused, never half-read."""

    max_file_bytes: int = 256 * _MIB
    """Any card file (PNG or CHARX; their images and assets count)."""
    max_card_json: int = 16 * _MIB
    """The card's own JSON or YAML text (a JSON/YAML file, a PNG chunk, card.json)."""
    max_charx_unpacked: int = 256 * _MIB
    """All members of a CHARX together, unpacked (zip-bomb guard)."""
    max_charx_members: int = 4096


DEFAULT_LIMITS = CardLimits()


@dataclass
class CardFile:
    """A card with what came with it: its format, spec, warnings, image and CHARX assets."""

    card: Card
    format: CardFormat
    spec: SpecName
    """The spec the file said it followed (`v1` for a flat card)."""
    path: Path | None = None
    warnings: list[str] = field(default_factory=list)
    image: bytes | None = None
    """The avatar: the PNG itself for a PNG card, the main icon for a CHARX."""
    assets: dict[str, bytes] = field(default_factory=dict)
    """CHARX members other than card.json, by path, kept byte for byte."""
    chunk: str | None = None
    """For a PNG: the keyword of the chunk the card was read from (`ccv3` or `chara`)."""


# --------------------------------------------------------------------------------- reading


def detect_card_format(data: bytes, path: Path | None = None) -> CardFormat:
    """The format of card bytes, from their content first and the file name second."""
    if data.startswith(PNG_SIGNATURE) or (path is not None and path.suffix.lower() in (".png", ".apng")):
        return "png"
    if data.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "charx"
    if data.startswith(b"\xff\xd8\xff"):
        if b"PK\x03\x04" in data:
            return "charx"  # RisuAI's "charxJpeg": a JPEG with the zip appended
        raise CardError(path, "a JPEG image holds no card data (use the PNG or CHARX export)")
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        raise CardError(path, "WebP cards are not supported: export the card as PNG, JSON or CHARX")
    suffix = path.suffix.lower() if path is not None else ""
    if suffix in _SUFFIXES:
        return _SUFFIXES[suffix]
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    return "json" if head in (b"{", b"[") else "yaml"


def load_card(path: str | Path, *, limits: CardLimits = DEFAULT_LIMITS) -> CardFile:
    """Read a card file in any supported format; CardError names the file and the problem."""
    p = Path(path)
    if p.exists() and not p.is_dir() and not p.is_file():
        raise CardError(p, "is not a regular file")
    p, data = read_limited(
        p, error=CardError, what="card", limit=limits.max_file_bytes,
        too_large=lambda size: f"the card file is {_mib(size)}, larger than the {_mib(limits.max_file_bytes)} limit",
    )
    return card_from_bytes(data, path=p, limits=limits)


def card_from_bytes(
    data: bytes,
    *,
    path: Path | None = None,
    format: CardFormat | None = None,
    limits: CardLimits = DEFAULT_LIMITS,
) -> CardFile:
    """Read a card from bytes (`path` only names it in messages and decides ambiguous formats)."""
    warnings: list[str] = []

    def warn(msg: str) -> None:
        if msg not in warnings:
            warnings.append(msg)

    if len(data) > limits.max_file_bytes:
        raise CardError(path, f"the card is {_mib(len(data))}, larger than the {_mib(limits.max_file_bytes)} limit")
    if not data.strip():
        raise CardError(path, "the card file is empty")
    fmt = format or detect_card_format(data, path)
    image: bytes | None = None
    assets: dict[str, bytes] = {}
    chunk_used: str | None = None
    if fmt == "png":
        raw, chunk_used = _read_png(data, path, warn, limits)
        image = data
    elif fmt == "charx":
        contents = read_charx(
            data,
            path,
            warn,
            max_card_json=limits.max_card_json,
            max_unpacked=limits.max_charx_unpacked,
            max_members=limits.max_charx_members,
        )
        raw = _parse_json(_decode_text(contents.card_json, path, warn, "card.json"), path, "card.json", warn)
        assets = contents.assets
        if raw.get("spec") != "chara_card_v3":
            warn(f"the CHARX's card.json says spec {raw.get('spec')!r}, not chara_card_v3; read it anyway")
    elif fmt == "json":
        _check_text_size(data, path, limits)
        raw = _parse_json(_decode_text(data, path, warn, "card"), path, None, warn)
    elif fmt == "yaml":
        _check_text_size(data, path, limits)
        raw = _yaml_to_raw(load_yaml(_decode_text(data, path, warn, "card"), path, CardError, warn), path, warn)
    else:
        raise CardError(path, f"unknown card format {fmt!r}")

    _refuse_other_kinds(raw, path)
    spec = card_spec(raw)
    if spec != "v1" and raw.get("spec") not in ("chara_card_v2", "chara_card_v3"):
        warn(f"card has spec {raw.get('spec')!r}; read its data object as {spec.upper()}")
    card = _validate(raw, path, warn)
    card.data.name = flat_name(card.data.name, warn, "card name")
    if not card.data.name.strip():
        guess = _name_from_path(path)
        card.data.name = guess
        warn(f"the card has no name; named it {guess!r} after the file")
    if fmt == "charx":
        image = _main_icon(card, assets)
    return CardFile(card, fmt, spec, path, warnings, image, assets, chunk_used)


def _read_png(data: bytes, path: Path | None, warn: Warn, limits: CardLimits) -> tuple[dict[str, Any], str]:
    chunks = find_card_chunks(data, path, warn, max_text=limits.max_card_json * 2)
    if not chunks:
        raise CardError(path, "the PNG has no character card in it (no 'chara' or 'ccv3' text chunk)")
    failures: list[str] = []
    for keyword in ("ccv3", "chara"):
        chunk = chunks.get(keyword)
        if chunk is None:
            continue
        try:
            text = decode_payload(chunk, path, warn, max_bytes=limits.max_card_json)
            raw = _parse_json(text, path, f"the {chunk.keyword!r} chunk", warn)
        except CardError as exc:
            if keyword == "ccv3" and "chara" in chunks:
                failures.append(exc.reason)
                continue
            raise
        if failures:
            warn(f"the 'ccv3' chunk is unreadable ({failures[0]}); used the 'chara' chunk")
        return raw, keyword
    raise CardError(path, failures[0])  # pragma: no cover - the loop returns or raises


def _check_text_size(data: bytes, path: Path | None, limits: CardLimits) -> None:
    if len(data) > limits.max_card_json:
        raise CardError(path, f"the card is {_mib(len(data))}, larger than the {_mib(limits.max_card_json)} limit")


def _decode_text(data: bytes, path: Path | None, warn: Warn, what: str) -> str:
    return decode_text(path, data, error=CardError, what=what, warn=warn)


def _parse_json(text: str, path: Path | None, where: str | None, warn: Warn) -> dict[str, Any]:
    raw = loads_json(text, path=path, error=CardError, where=where, warn=warn)
    if not isinstance(raw, dict):
        prefix = f"{where}: " if where else ""
        raise CardError(path, f"{prefix}card JSON is not an object (it is a {type(raw).__name__})")
    return raw


def _yaml_to_raw(doc: Any, path: Path | None, warn: Warn) -> dict[str, Any]:
    """rp-context's YAML card (flat or nested), a card-shaped YAML, or a text-generation-webui one."""
    if not isinstance(doc, dict):
        raise CardError(path, "a YAML card must be a mapping of fields")
    kind = doc.get("kind")
    if kind is not None and kind != YAML_KIND:
        raise CardError(path, f"this is a {kind!r} file, not a character card (kind: {YAML_KIND})")
    if kind == YAML_KIND:
        doc = dict(doc)
        doc.pop("kind")
        version = doc.pop("version", YAML_VERSION)
        if not isinstance(version, int) or version > YAML_VERSION:
            warn(f"card file version {version!r} is newer than this rp-context reads ({YAML_VERSION})")
        top = doc.pop("top_level", None) or {}
        crlf = doc.pop("crlf_fields", None)
        if not isinstance(top, dict):
            raise CardError(path, "top_level must be a mapping")
        if set(doc) == {"data"} and isinstance(doc["data"], dict):
            doc = doc["data"]
        _restore_crlf(doc, crlf)
        return {"spec": "chara_card_v3", "spec_version": "3.0", "data": doc, **top}
    if isinstance(doc.get("data"), dict) or "spec" in doc:
        return doc
    if ("context" in doc or "greeting" in doc) and not ({"description", "first_mes"} & set(doc)):
        doc = dict(doc)
        moved = []
        if "context" in doc:
            doc["description"] = doc.pop("context")
            moved.append("context as description")
        if "greeting" in doc:
            doc["first_mes"] = doc.pop("greeting")
            moved.append("greeting as first_mes")
        warn(f"text-generation-webui character: read {' and '.join(moved)}")
    return doc


def _refuse_other_kinds(raw: dict[str, Any], path: Path | None) -> None:
    """Name the file's real kind when it is clearly not a card (a lorebook, roster, persona...)."""
    what = None
    card_fields = {"description", "personality", "scenario", "first_mes", "mes_example", "data"}
    if raw.get("spec") == "lorebook_v3" or (
        isinstance(raw.get("entries"), (dict, list)) and not card_fields & set(raw)
    ):
        what = "a lorebook (world info), not a character card"
    elif "members" in raw and ("generation_mode" in raw or "activation_strategy" in raw):
        what = "a group roster, not a character card"
    elif "personas" in raw and "persona_descriptions" in raw:
        what = "a SillyTavern persona backup, not a character card"
    elif "user_name" in raw and "character_name" in raw:
        what = "a SillyTavern chat, not a character card"
    if what:
        raise CardError(path, f"this is {what}")


def _validate(raw: dict[str, Any], path: Path | None, warn: Warn) -> Card:
    sink: list[str] = []
    try:
        card = Card.model_validate(raw, context={"warnings": sink})
    except ValidationError as exc:
        raise CardError(path, _first_error(exc)) from exc
    except RecursionError as exc:
        raise CardError(path, "the card is nested too deeply") from exc
    for msg in sink:
        warn(msg)
    return card


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False)
    first = errors[0]
    loc = ".".join(str(part) for part in first["loc"] if not str(part).startswith("function-"))
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    return f"{loc or 'card'}: {first['msg']}{more}"


def _name_from_path(path: Path | None) -> str:
    if path is None:
        return "Character"
    stem = path.name.split(".", 1)[0]
    return stem.replace("_", " ").strip() or "Character"


def _main_icon(card: Card, assets: dict[str, bytes]) -> bytes | None:
    """The bytes of the card's main icon inside a CHARX, if there is one."""
    icons = [a for a in card.data.assets or [] if a.type == "icon"]
    icons.sort(key=lambda a: a.name != "main")
    for asset in icons:
        if asset.uri.startswith("embeded://"):
            member = assets.get(asset.uri[len("embeded://") :])
            if member is not None:
                return member
    if card.data.assets is None:
        for name in sorted(assets):
            if name.startswith("assets/icon/") and name.lower().endswith((".png", ".jpg", ".jpeg", ".webp")):
                return assets[name]
    return None


# --------------------------------------------------------------------------------- writing


def card_to_bytes(
    card: Card | CardFile,
    format: CardFormat,
    *,
    image: bytes | None = None,
    spec: Literal["v2", "v3"] = "v3",
) -> tuple[bytes, list[str]]:
    """The file bytes of `card` in `format`, and warnings about anything the format cannot hold.

    JSON writes `spec` (V3 by default). PNG writes the image (the card's own, `image`, or a
    placeholder) with a V2 `chara` chunk and a V3 `ccv3` chunk. CHARX writes V3 `card.json` and
    the assets. YAML writes rp-context's hand-editable card.
    """
    loaded = card if isinstance(card, CardFile) else None
    model = card.card if isinstance(card, CardFile) else card
    assets = dict(loaded.assets) if loaded else {}
    picture = image if image is not None else (loaded.image if loaded else None)
    warnings: list[str] = []
    left_out = [name for name, payload in assets.items() if payload != picture]
    if format in ("json", "yaml", "png") and left_out:
        warnings.append(
            f"{len(left_out)} CHARX asset(s) cannot be stored in {format.upper()} and were left "
            f"out ({', '.join(left_out[:3])}{', ...' if len(left_out) > 3 else ''}); convert to "
            "CHARX to keep them"
        )
    if format in ("json", "yaml") and picture is not None:
        warnings.append(f"the avatar image is not stored in {format.upper()}")
    if format == "json":
        text = json.dumps(card_to_dict(model, spec), ensure_ascii=False, indent=2) + "\n"
        return text.encode("utf-8"), warnings
    if format == "yaml":
        return card_to_yaml(model).encode("utf-8"), warnings
    if format == "png":
        base = to_png(picture) if picture is not None else placeholder_png(model.data.name)
        texts = {
            "chara": _b64_json(card_to_dict(model, "v2", v1_copies=True)),
            "ccv3": _b64_json(card_to_dict(model, "v3")),
        }
        return embed_card_chunks(base, texts), warnings
    if format == "charx":
        model, assets = _with_icon(model, assets, picture)
        card_json = json.dumps(card_to_dict(model, "v3"), ensure_ascii=False, indent=2).encode("utf-8")
        return write_charx(card_json, assets, warnings.append), warnings
    raise ValueError(f"unknown card format {format!r}")


def _b64_json(obj: dict[str, Any]) -> str:
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _with_icon(card: Card, assets: dict[str, bytes], picture: bytes | None) -> tuple[Card, dict[str, bytes]]:
    """Make sure a CHARX carries the avatar, as the main icon asset the card points to."""
    if picture is None:
        return card, assets
    listed = card.data.assets or []
    icons = sorted((a for a in listed if a.type == "icon"), key=lambda a: a.name != "main")
    main = icons[0] if icons else None
    if main is not None and main.uri.startswith("embeded://"):
        member = main.uri[len("embeded://") :]
        return card, assets if member in assets else {**assets, member: picture}
    if main is not None and main.uri != "ccdefault:":
        return card, assets  # the icon lives at a URL or in a data: URL; leave it there
    ext = "png" if picture.startswith(PNG_SIGNATURE) else _image_ext(picture)
    member = f"assets/icon/images/main.{ext}"
    updated = card.model_copy(deep=True)
    updated.data.assets = [
        Asset(type="icon", uri=f"embeded://{member}", name="main", ext=ext),
        *(a.model_copy(deep=True) for a in listed if a is not main),
    ]
    return updated, {member: picture, **{k: v for k, v in assets.items() if k != member}}


def _image_ext(data: bytes) -> str:
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    return "unknown"


def card_to_yaml(card: Card) -> str:
    """rp-context's YAML card: `kind: card`, `version: 1`, then the data fields, flat.

    Text that uses Windows line endings throughout is written as a readable block with plain
    line breaks, and its place is listed under `crlf_fields` so reading restores the \\r.
    """
    data = card.data.to_dict()
    crlf: list[list[str | int]] = []
    data = _lf_blocks(data, [], crlf)
    head: dict[str, Any] = {"kind": YAML_KIND, "version": YAML_VERSION}
    if any(key in data for key in (*_YAML_RESERVED, "data")):
        doc = {**head, "data": data}  # a field name would clash with the header: nest the data
    else:
        doc = {**head, **data}
    if card.outer:
        doc["top_level"] = card.outer
    if crlf:
        doc["crlf_fields"] = crlf
    return (
        "# A character card for rp-context. Edit it freely; `rp-context card convert` turns it\n"
        "# into PNG, JSON (V2/V3) or CHARX for other apps. Unknown keys are kept as they are.\n"
        + dump_yaml(doc)
    )


def _lf_blocks(value: Any, where: list[str | int], found: list[list[str | int]]) -> Any:
    if isinstance(value, str):
        pairs = value.count("\r\n")
        if pairs and value.count("\r") == pairs and value.count("\n") == pairs:
            found.append(list(where))
            return value.replace("\r\n", "\n")
        return value
    if isinstance(value, dict):
        return {k: _lf_blocks(v, [*where, k], found) for k, v in value.items()}
    if isinstance(value, list):
        return [_lf_blocks(v, [*where, i], found) for i, v in enumerate(value)]
    return value


def _restore_crlf(data: dict[str, Any], paths: Any) -> None:
    if not isinstance(paths, list):
        return
    for where in paths:
        if not isinstance(where, list) or not where:
            continue
        node: Any = data
        for step in where[:-1]:
            try:
                node = node[step]
            except (KeyError, IndexError, TypeError):
                node = None
                break
        last = where[-1]
        try:
            text = node[last] if node is not None else None
        except (KeyError, IndexError, TypeError):
            text = None
        if isinstance(text, str) and "\r" not in text:
            node[last] = text.replace("\n", "\r\n")


def save_card(
    card: Card | CardFile,
    path: str | Path,
    *,
    format: CardFormat | None = None,
    image: bytes | None = None,
    spec: Literal["v2", "v3"] = "v3",
) -> list[str]:
    """Write `card` atomically (beside, fsync, rename); returns warnings about what was left out.

    The format comes from `format` or the file extension (.json, .png, .charx, .yaml/.yml).
    """
    p = Path(path)
    fmt = format or _SUFFIXES.get(p.suffix.lower())
    if fmt is None:
        raise CardError(p, f"cannot tell the card format from {p.suffix or 'no extension'!r}; name one of {', '.join(FORMATS)}")
    data, warnings = card_to_bytes(card, fmt, image=image, spec=spec)
    try:
        write_bytes_atomic(p, data)
    except OSError as exc:
        raise CardError(p, f"cannot write the card ({exc.strerror or exc})") from exc
    return warnings


def _mib(n: int) -> str:
    return f"{n / _MIB:.1f} MiB"
