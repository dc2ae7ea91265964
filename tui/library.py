"""What the pickers list (cards, groups, personas, presets) and importing files into the user folder.

Listing never fails on a bad file: the entry carries the problem instead, so the picker can show it.
Which kind a file is, and importing it, are the library's (`rp_context.userfiles`); this module
only points them at the app's folders.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rp_context.cards import load_card, load_persona, load_roster
from rp_context.errors import RPContextError
from rp_context.paths import bundled_dir
from rp_context.presets.library import list_presets
from rp_context.userfiles import ImportResult, detect_kind
from rp_context.userfiles import import_file as _import_file

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


def _entry(path: Path, origin: str) -> Entry | None:
    """The picker entry for a card, roster or persona file; None for other kinds (a lorebook)."""
    kind = detect_kind(path)
    if kind not in ("card", "roster", "persona"):
        return None
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
    found = [(p, "sample") for p in _files(bundled_dir("cards"))]
    found += [(p, "yours") for p in _files(cards_dir())]
    found += [(p, "yours") for p in _files(personas_dir())]
    return [e for p, origin in found if (e := _entry(p, origin)) is not None]


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


def import_file(source: str | Path) -> ImportResult:
    """Check and copy a card, persona or SillyTavern preset into the user data folder (see
    `rp_context.userfiles.import_file`); raises an InputFileError subclass, writing nothing."""
    return _import_file(source, cards=cards_dir(), personas=personas_dir(), presets=presets_dir())
