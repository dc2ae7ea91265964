"""The user's files: which kind a file is, and importing one into the user's folders.

`detect_kind` is the one rule telling a card from a lorebook, persona, group roster or chat; the
command line (`card show`, `card validate`) and the app's pickers both use it. `import_file` checks
a card, persona or SillyTavern preset with the library's own loaders, then copies it atomically,
never over an existing file: cards byte for byte, SillyTavern presets converted to YAML. Nothing
here imports a frontend.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .atomic import write_bytes_atomic
from .cards import load_card, load_persona
from .errors import CardError, InputFileError, PresetError, RPContextError
from .presets.models import KIND_DIRS
from .presets.sillytavern import import_sillytavern, sillytavern_kind
from .presets.yamlio import kind_of, save_preset

__all__ = ["FILE_KINDS", "FileKind", "ImportResult", "detect_kind", "import_file"]

FileKind = Literal["card", "lorebook", "persona", "roster", "chat"]
FILE_KINDS: tuple[FileKind, ...] = ("card", "lorebook", "persona", "roster", "chat")
_NAMED: dict[str, FileKind] = {".roster.yaml": "roster", ".roster.yml": "roster",
                               ".persona.yaml": "persona", ".persona.yml": "persona"}
"""File names that say their kind (rp-context writes rosters and personas so)."""
_HEAD_LIMIT = 64 * 1024 * 1024


def detect_kind(path: Path) -> FileKind:
    """Which kind of file this is: card, lorebook, persona, roster or chat. Never raises: a file
    that cannot be read is a "card", and the card loader says what is wrong with it."""
    name = path.name.lower()
    for suffix, kind in _NAMED.items():
        if name.endswith(suffix):
            return kind
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return "chat"
    if suffix in (".png", ".apng", ".charx", ".jpg", ".jpeg", ".webp"):
        return "card"
    try:
        with path.open("rb") as fh:
            head = fh.read(_HEAD_LIMIT + 1)
    except OSError:
        return "card"
    if head.startswith((b"\x89PNG", b"PK")):
        return "card"
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError:
        return "card"
    raw = _parse(text, path)
    if raw == "chat":
        return "chat"
    return _kind_of_document(raw) if isinstance(raw, dict) else "card"


def _parse(text: str, path: Path) -> Any:
    """The document as JSON or YAML; "chat" for JSON Lines; None when it parses as neither."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # JSONDecodeError, or an integer past int()'s digits
        pass
    first = text.lstrip().split("\n", 1)[0]
    try:
        if isinstance(json.loads(first), dict) and "\n" in text.strip():
            return "chat"
    except (ValueError, RecursionError):
        pass
    if path.suffix.lower() in (".yaml", ".yml") or not text.lstrip().startswith(("{", "[")):
        from .safeload import loads_yaml

        try:
            return loads_yaml(text, path=path, error=CardError)
        except RPContextError:
            return None
    return None


def _kind_of_document(raw: dict[str, Any]) -> FileKind:
    """The kind a parsed document declares (`kind:`), else the kind its shape says."""
    for kind in FILE_KINDS:
        if raw.get("kind") == kind:
            return kind
    if raw.get("spec") == "lorebook_v3" or (
        isinstance(raw.get("entries"), (dict, list)) and "first_mes" not in raw and "data" not in raw
    ):
        return "lorebook"
    if "personas" in raw and "persona_descriptions" in raw:
        return "persona"
    if "members" in raw and ("generation_mode" in raw or "activation_strategy" in raw
                             or "disabled_members" in raw):
        return "roster"
    if "user_name" in raw and "character_name" in raw:
        return "chat"
    return "card"


@dataclass(frozen=True)
class ImportResult:
    """What an import made: the kind, the copy's path, the name inside, and repairs made."""

    kind: str
    """card, persona, or a preset kind (instruct, context, sysprompt...)."""
    path: Path
    name: str
    warnings: tuple[str, ...] = ()


def _free_path(folder: Path, name: str, data: bytes) -> tuple[Path, bool]:
    """Where to copy `name` in `folder` without overwriting; (path, already_there_identical)."""
    target = folder / name
    stem, suffix = target.stem, target.suffix
    n = 2
    while target.exists():
        if target.read_bytes() == data:
            return target, True
        target = folder / f"{stem}-{n}{suffix}"
        n += 1
    return target, False


def _st_preset(path: Path, data: bytes) -> dict[str, Any] | None:
    """The JSON of a SillyTavern preset file; None when the file is something else."""
    if path.suffix.lower() != ".json":
        return None
    try:
        obj = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if isinstance(obj, dict) and "spec" not in obj and "data" not in obj \
            and sillytavern_kind(obj) is not None:
        return obj
    return None


def _read(src: Path) -> bytes:
    try:
        if not src.is_file():
            raise CardError(src, "no such file" if not src.exists() else "is not a regular file")
        return src.read_bytes()
    except OSError as exc:
        raise CardError(src, f"cannot read the file ({exc.strerror or exc})") from exc


def import_file(source: str | Path, *, cards: Path, personas: Path, presets: Path) -> ImportResult:
    """Check `source` and copy it into the folder for its kind: `cards`, `personas`, or the kind's
    folder under `presets` (a SillyTavern preset, converted to YAML). Raises an InputFileError
    subclass naming the file and the problem; nothing is written then."""
    src = Path(source).expanduser()
    data = _read(src)
    st = _st_preset(src, data)
    if st is not None:
        preset = import_sillytavern(st, src)
        kind = kind_of(preset)
        target = presets / KIND_DIRS[kind] / f"{src.stem}.yaml"
        if target.exists():
            raise PresetError(target, f"a {kind} preset with this name exists already; "
                                      "rename the file first")
        save_preset(preset, target)
        return ImportResult(kind, target, src.stem)
    kind = detect_kind(src)
    if kind == "persona":
        name, warnings, folder = load_persona(src).persona.name, [], personas
    elif kind == "card":
        loaded = load_card(src)
        name, warnings, folder = loaded.card.data.name, list(loaded.warnings), cards
    elif kind == "roster":
        raise CardError(src, "group rosters name their members by file; open it with --roster "
                             "instead")
    else:
        raise CardError(src, f"this is a {kind} file; cards, personas and SillyTavern presets "
                             "can be imported")
    target, same = _free_path(folder, src.name, data)
    if not same:
        try:
            write_bytes_atomic(target, data)
        except OSError as exc:
            raise InputFileError(target, f"cannot write the copy ({exc.strerror or exc})") from exc
    return ImportResult(kind, target, name or src.stem, tuple(warnings))
