"""Card-style lorebook entries normalised into what the scan needs, in SillyTavern's scan order.

SillyTavern keeps its own fields in each entry's `extensions` (`position`, `depth`, `role`,
`probability`, `selectiveLogic`, `group`, ...; see `rp_context.cards.lorebook`). Missing or null
fields get the defaults SillyTavern gives a card book on import (`convertCharacterBook`).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .._types import ROLES
from ..cards.model import Lorebook, LoreEntry
from .decorators import parse_decorators
from .result import Position, Role
from .settings import WorldInfoSettings

__all__ = ["PreparedEntry", "prepare_entries", "LOGIC_NAMES", "ST_POSITIONS"]

ST_POSITIONS: dict[int, Position] = {
    0: "before",
    1: "after",
    2: "an_top",
    3: "an_bottom",
    4: "at_depth",
    5: "em_top",
    6: "em_bottom",
}
_POSITION_NAMES: dict[str, Position] = {
    "before_char": "before",
    "after_char": "after",
    **{name: name for name in ST_POSITIONS.values()},
}
_ROLES: dict[int, Role] = dict(enumerate(ROLES))
LOGIC_NAMES = {0: "AND_ANY", 1: "NOT_ALL", 2: "NOT_ANY", 3: "AND_ALL"}
DEFAULT_DEPTH = 4
DEFAULT_WEIGHT = 100


@dataclass
class PreparedEntry:
    """One entry ready to scan: every SillyTavern field resolved to a plain value."""

    key: str
    uid: int | str
    book: str
    index: int
    """Place in scan order (books in the given order, each sorted by `order` descending)."""
    comment: str
    content: str
    """After decorator stripping, before macros."""
    keys: list[str]
    secondary: list[str]
    selective: bool
    logic: int
    constant: bool
    enabled: bool
    order: float
    position: Position | None
    """None when the entry's position is one we cannot place (SillyTavern's newer outlets)."""
    raw_position: Any
    depth: int
    role: Role
    probability: float
    use_probability: bool
    groups: list[str]
    group_override: bool
    group_weight: float
    prevent_recursion: bool
    exclude_recursion: bool
    delay_until_recursion: int
    scan_depth: int | None
    case_sensitive: bool
    whole_words: bool
    use_regex: bool
    use_group_scoring: bool | None
    sticky: int
    cooldown: int
    delay: int
    ignore_budget: bool
    activate: bool = False
    dont_activate: bool = False
    additional_keys: list[str] = field(default_factory=list)
    exclude_keys: list[str] = field(default_factory=list)
    disabled_reason: str | None = None
    """Why the entry is off when it is (None: `enabled` says it all)."""
    source: LoreEntry | None = field(default=None, repr=False, compare=False)
    """The definition it was prepared from (hashed when timed effects ask for `hash`)."""
    _digest: str = field(default="", repr=False, compare=False)

    @property
    def hash(self) -> str:
        """Identity of the entry's definition, for timed effects (SillyTavern hashes the entry
        too); computed on first use, as most scans have no sticky or cooldown entry to look up."""
        if not self._digest and self.source is not None:
            self._digest = _hash(self.source, self.book)
        return self._digest


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _int(value: Any, default: int) -> int:
    if _is_missing(value) or isinstance(value, bool):
        return default if not isinstance(value, bool) else int(value)
    try:
        return int(float(value))
    except (TypeError, ValueError, OverflowError):  # "abc", "1e999", Infinity: not a number here
        return default


def _float(value: Any, default: float) -> float:
    if _is_missing(value) or isinstance(value, bool):
        return default
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return default
    return number if math.isfinite(number) else default


def _bool(value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "on")
    return bool(value)


def _opt_bool(value: Any) -> bool | None:
    return None if value is None else _bool(value, False)


def _position(entry: LoreEntry) -> tuple[Position | None, Any]:
    """SillyTavern's integer in `extensions.position` wins over the card's `position` string."""
    raw = entry.extensions.get("position")
    if raw is None or isinstance(raw, bool):
        raw = entry.position
    if raw is None:
        return "before", raw
    if isinstance(raw, str):
        text = raw.strip().lower()
        if text in _POSITION_NAMES:
            return _POSITION_NAMES[text], raw
        try:
            raw_number: Any = int(text)
        except ValueError:  # also a number past int()'s digits
            return None, raw
    else:
        raw_number = raw
    try:
        return ST_POSITIONS.get(int(raw_number)), raw
    except (TypeError, ValueError, OverflowError):
        return None, raw


def _role(value: Any) -> Role:
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _ROLES.values():
            return text  # type: ignore[return-value]
    return _ROLES.get(_int(value, 0), "system")


def _groups(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(g).strip() for g in value if str(g).strip()]
    if not isinstance(value, str):
        return []
    return [g for g in re.split(r",\s*", value) if g]


def _js_key_order(entries: Sequence[LoreEntry]) -> list[int]:
    """Indices in JavaScript object-key order: integer ids ascending first, then the rest as listed.

    SillyTavern keeps a book's entries in an object keyed by uid, so that is the tie order
    when two entries have the same `order`.
    """
    numeric: list[tuple[int, int]] = []
    other: list[int] = []
    for i, entry in enumerate(entries):
        uid = entry.id if entry.id is not None else i
        text = str(uid)
        if isinstance(uid, int | str) and not isinstance(uid, bool) and text.isdigit() and (text == "0" or not text.startswith("0")):
            numeric.append((int(text), i))
        else:
            other.append(i)
    return [i for _, i in sorted(numeric)] + other


def _hash(entry: LoreEntry, book: str) -> str:
    payload = json.dumps([book, entry.to_dict()], sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def prepare_entry(entry: LoreEntry, *, uid: int | str, book: str, index: int, settings: WorldInfoSettings) -> PreparedEntry:
    """Resolve one card-style entry (and its decorators) against the global settings."""
    ext = entry.extensions
    content = entry.content
    decorators = None
    if settings.decorators:
        decorators, content = parse_decorators(content)
    position, raw_position = _position(entry)
    depth = _int(ext.get("depth"), DEFAULT_DEPTH)
    role = _role(ext.get("role"))
    scan_depth = None if _is_missing(ext.get("scan_depth")) else _int(ext.get("scan_depth"), 0)
    case_sensitive = _opt_bool(ext.get("case_sensitive"))
    if case_sensitive is None:
        case_sensitive = entry.case_sensitive
    whole_words = _opt_bool(ext.get("match_whole_words"))
    delay_rec = ext.get("delay_until_recursion")
    delay_level = 1 if delay_rec is True else _int(delay_rec, 0) if delay_rec not in (False, None) else 0
    probability = ext.get("probability")
    constant = bool(entry.constant)
    prepared = PreparedEntry(
        key=f"{book}.{uid}",
        uid=uid,
        book=book,
        index=index,
        comment=entry.comment or entry.name or "",
        content=content,
        keys=[k for k in entry.keys if isinstance(k, str)],
        secondary=[k for k in (entry.secondary_keys or []) if isinstance(k, str)],
        selective=bool(entry.selective),
        logic=_int(ext.get("selectiveLogic"), 0),
        constant=constant,
        enabled=entry.enabled,
        order=_float(entry.insertion_order, 100.0),
        position=position,
        raw_position=raw_position,
        depth=depth,
        role=role,
        probability=_float(probability, 100.0),
        use_probability=_bool(ext.get("useProbability"), True),
        groups=_groups(ext.get("group")),
        group_override=_bool(ext.get("group_override"), False),
        group_weight=_float(ext.get("group_weight"), DEFAULT_WEIGHT),
        prevent_recursion=_bool(ext.get("prevent_recursion"), False),
        exclude_recursion=_bool(ext.get("exclude_recursion"), False),
        delay_until_recursion=max(delay_level, 0),
        scan_depth=scan_depth,
        case_sensitive=settings.case_sensitive if case_sensitive is None else case_sensitive,
        whole_words=settings.match_whole_words if whole_words is None else whole_words,
        use_regex=bool(entry.use_regex),
        use_group_scoring=_opt_bool(ext.get("use_group_scoring")),
        sticky=max(_int(ext.get("sticky"), 0), 0),
        cooldown=max(_int(ext.get("cooldown"), 0), 0),
        delay=max(_int(ext.get("delay"), 0), 0),
        ignore_budget=_bool(ext.get("ignoreBudget", ext.get("ignore_budget")), False)
        or (constant and settings.constant_outside_budget),
        source=entry,
    )
    if decorators is not None:
        prepared.activate = decorators.activate
        prepared.dont_activate = decorators.dont_activate
        prepared.additional_keys = decorators.additional_keys
        prepared.exclude_keys = decorators.exclude_keys
        if decorators.scan_depth is not None:
            prepared.scan_depth = decorators.scan_depth
        if decorators.role is not None:
            prepared.role = decorators.role  # type: ignore[assignment]
        if decorators.position is not None:
            prepared.position = decorators.position  # type: ignore[assignment]
        elif decorators.depth is not None:
            prepared.position = "at_depth"
        if decorators.depth is not None:
            prepared.depth = decorators.depth
    if prepared.depth < 0:
        prepared.depth = 0
    return prepared


def book_name(book: Lorebook, index: int) -> str:
    return book.name or f"book{index + 1}"


def prepare_entries(books: Sequence[Lorebook], settings: WorldInfoSettings) -> list[PreparedEntry]:
    """All entries of all books in scan order: books as given, each sorted by `order` descending
    (ties in SillyTavern's uid order).

    A book whose name was already given (a card's embedded copy of a world that is also loaded
    globally) is skipped, as SillyTavern skips a character book that is already global; its
    entries are listed as disabled under `name#N`.
    """
    out: list[PreparedEntry] = []
    names: set[str] = set()
    for b, book in enumerate(books):
        name = book_name(book, b)
        duplicate = name in names
        if duplicate:
            name = f"{name}#{b + 1}"
        names.add(name)
        ordered = _js_key_order(book.entries)
        ordered.sort(key=lambda i: -_float(book.entries[i].insertion_order, 100.0))
        seen: set[str] = set()
        for i in ordered:
            entry = book.entries[i]
            uid: int | str = entry.id if entry.id is not None else i
            if str(uid) in seen:
                uid = f"{uid}~{i}"
            seen.add(str(uid))
            prepared = prepare_entry(entry, uid=uid, book=name, index=len(out), settings=settings)
            if duplicate:
                prepared.enabled = False
                prepared.disabled_reason = f"book {book_name(book, b)!r} is already loaded"
            out.append(prepared)
    return out
