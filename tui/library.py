"""What the pickers list (cards, groups, personas, presets) and importing files into the user folder.

Listing never fails on a bad file: the entry carries the problem instead, so the picker can show it.
Imports check the file with the library's own loaders first and copy it atomically, never over an
existing file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml

from rp_context.atomic import write_bytes_atomic
from rp_context.cards import load_card, load_persona, load_roster
from rp_context.errors import CardError, InputFileError, PresetError, RPContextError
from rp_context.paths import bundled_dir
from rp_context.presets.library import list_presets
from rp_context.presets.sillytavern import import_sillytavern, sillytavern_kind
from rp_context.presets.yamlio import kind_of, save_preset

from .config import cards_dir, personas_dir, presets_dir

__all__ = ["Entry", "EntryKind", "list_cast", "list_personas", "list_preset_names", "import_file",
           "ImportResult", "CARD_SUFFIXES"]

EntryKind = Literal["card", "roster", "persona"]
CARD_SUFFIXES = {".json", ".png", ".apng", ".charx", ".yaml", ".yml"}


@dataclass(frozen=True)
class Entry:
    """One file a picker offers: its kind, the name inside it, or why it cannot be read."""

    kind: EntryKind
    path: Path
    name: str
    origin: str
    """`sample` (shipped with rp-context) or `yours` (the user data folder)."""
    problem: str | None = None


def _yaml_kind(path: Path) -> str | None:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    return str(doc.get("kind")) if isinstance(doc, dict) and doc.get("kind") else None


def _kind_of_file(path: Path) -> EntryKind:
    name = path.name.lower()
    if name.endswith((".roster.yaml", ".roster.yml")):
        return "roster"
    if name.endswith((".persona.yaml", ".persona.yml")):
        return "persona"
    if path.suffix.lower() in {".yaml", ".yml"}:
        kind = _yaml_kind(path)
        if kind in ("roster", "persona"):
            return kind  # type: ignore[return-value]
    return "card"


def _entry(path: Path, origin: str) -> Entry:
    kind = _kind_of_file(path)
    try:
        if kind == "roster":
            name = load_roster(path).roster.name
        elif kind == "persona":
            name = load_persona(path).persona.name
        else:
            name = load_card(path).card.data.name
        return Entry(kind, path, name or path.stem, origin)
    except RPContextError as exc:
        return Entry(kind, path, path.name, origin, problem=getattr(exc, "reason", str(exc)))


def _files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in CARD_SUFFIXES)


def _scan() -> list[Entry]:
    out = [_entry(p, "sample") for p in _files(bundled_dir("cards"))]
    out += [_entry(p, "yours") for p in _files(cards_dir())]
    out += [_entry(p, "yours") for p in _files(personas_dir())]
    return out


def list_cast() -> list[Entry]:
    """Cards and group rosters, samples first, then the user's (broken files included, marked)."""
    return [e for e in _scan() if e.kind in ("card", "roster")]


def list_personas() -> list[Entry]:
    return [e for e in _scan() if e.kind == "persona"]


def list_preset_names() -> list[tuple[str, str]]:
    """(name, description) of every bundle, then every instruct family (a bundle wins a tie)."""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for kind, label in (("bundle", "bundle"), ("instruct", "instruct family")):
        for e in list_presets(kind):
            if e.name in seen:
                continue
            seen.add(e.name)
            out.append((e.name, f"{label} · {e.origin}"))
    return out


@dataclass(frozen=True)
class ImportResult:
    kind: str
    """card, roster, persona, or a preset kind (instruct, context, sysprompt...)."""
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


def _is_st_preset(path: Path, data: bytes) -> bool:
    if path.suffix.lower() != ".json":
        return False
    try:
        obj = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(obj, dict) and "spec" not in obj and "data" not in obj and sillytavern_kind(obj) is not None


def import_file(source: str | Path) -> ImportResult:
    """Check and copy a card, roster, persona or SillyTavern preset into the user data folder.

    Cards are copied byte for byte (nothing lost); SillyTavern presets are converted to YAML.
    Raises an InputFileError subclass naming the file and the problem; nothing is written then.
    """
    src = Path(source).expanduser()
    try:
        if not src.is_file():
            raise CardError(src, "no such file" if not src.exists() else "is not a regular file")
        data = src.read_bytes()
    except OSError as exc:
        raise CardError(src, f"cannot read the file ({exc.strerror or exc})") from exc
    if _is_st_preset(src, data):
        preset = import_sillytavern(json.loads(data.decode("utf-8-sig")), src)
        kind = kind_of(preset)
        from rp_context.presets.models import KIND_DIRS

        folder = presets_dir() / KIND_DIRS[kind]
        target = folder / f"{src.stem}.yaml"
        if target.exists():
            raise PresetError(target, f"a {kind} preset with this name exists already; rename the file first")
        save_preset(preset, target)
        return ImportResult(kind, target, src.stem)
    kind = _kind_of_file(src)
    if kind == "roster":
        raise CardError(src, "group rosters name their members by file; open it with --roster instead")
    warnings: list[str] = []
    if kind == "persona":
        name = load_persona(src).persona.name
        folder = personas_dir()
    else:
        loaded = load_card(src)
        name, warnings = loaded.card.data.name, list(loaded.warnings)
        folder = cards_dir()
    target, same = _free_path(folder, src.name, data)
    if not same:
        try:
            write_bytes_atomic(target, data)
        except OSError as exc:
            raise InputFileError(target, f"cannot write the copy ({exc.strerror or exc})") from exc
    return ImportResult(kind, target, name or src.stem, tuple(warnings))
