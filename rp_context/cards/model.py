"""Character cards (V1, V2, V3) normalised to one model, with their lorebooks.

A card in memory is a `Card`: the fields of the V3 `data` object (`CardData`, a superset of V1
and V2) plus whatever other keys the file had beside `spec`/`spec_version`/`data`. Reading is
lenient: the known real-world mistakes are repaired with a warning each. Writing is lossless:
unknown keys, explicit nulls and every `extensions` entry come back out where they were.

    >>> card = Card.model_validate({"name": "Ada", "tags": "a, b"}, context={"warnings": w})
    >>> card.data.tags
    ['a', 'b']
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, ValidationInfo, model_validator

from ._base import (
    LosslessModel,
    Warn,
    as_bool,
    as_number,
    as_object,
    as_text,
    as_text_list,
    fill_missing,
    join_path,
    warner,
)

__all__ = [
    "Asset",
    "Card",
    "CardData",
    "Lorebook",
    "LoreEntry",
    "SpecName",
    "card_spec",
    "card_to_dict",
]

SpecName = Literal["v1", "v2", "v3"]

V1_FIELDS = ("name", "description", "personality", "scenario", "first_mes", "mes_example")
TEXT_FIELDS = (
    *V1_FIELDS,
    "creator_notes",
    "system_prompt",
    "post_history_instructions",
    "creator",
    "character_version",
)
_V2_REQUIRED = (*TEXT_FIELDS, "alternate_greetings", "tags", "extensions")
_PYGMALION = {
    "char_name": "name",
    "char_persona": "description",
    "char_greeting": "first_mes",
    "world_scenario": "scenario",
    "example_dialogue": "mes_example",
}
_POSITIONS = {0: "before_char", 1: "after_char"}


# ------------------------------------------------------------------------------------ models


class LoreEntry(LosslessModel):
    """One lorebook entry (V2 `character_book.entries[]`, with the V3 additions)."""

    _always: ClassVar[frozenset[str]] = frozenset(
        {"keys", "content", "extensions", "enabled", "insertion_order", "use_regex"}
    )

    keys: list[str] = Field(default_factory=list)
    """Words that activate the entry (regular expressions when `use_regex`)."""
    content: str = ""
    """Text inserted into the prompt when the entry activates (V3: may start with @@decorators)."""
    extensions: dict[str, Any] = Field(default_factory=dict)
    """App data, kept as-is (SillyTavern keeps its world-info fields here)."""
    enabled: bool = True
    insertion_order: int | float = 100
    """Lower values are inserted higher in the prompt."""
    use_regex: bool = False
    """V3: the keys are regular expressions."""
    case_sensitive: bool | None = None
    constant: bool | None = None
    """Always inserted (within the budget)."""
    name: str | None = None
    priority: int | float | None = None
    """When the budget is exceeded, the lowest priority is dropped first."""
    id: int | str | None = None
    comment: str | None = None
    selective: bool | None = None
    """Require a key from both `keys` and `secondary_keys`."""
    secondary_keys: list[str] | None = None
    position: str | int | None = None
    """`before_char` or `after_char` (other values are kept as they are)."""

    @model_validator(mode="before")
    @classmethod
    def _lenient(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, dict):
            return normalise_entry(value, "", warner(info))
        return value


class Lorebook(LosslessModel):
    """A lorebook: a card's `character_book`, or a standalone V3 `lorebook_v3`."""

    _always: ClassVar[frozenset[str]] = frozenset({"extensions", "entries"})

    name: str | None = None
    description: str | None = None
    scan_depth: int | float | None = None
    """How many recent messages are scanned for keys."""
    token_budget: int | float | None = None
    recursive_scanning: bool | None = None
    extensions: dict[str, Any] = Field(default_factory=dict)
    entries: list[LoreEntry] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _lenient(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, dict):
            return normalise_book(value, "", warner(info))
        return value


class Asset(LosslessModel):
    """A V3 asset: an icon, background, user icon, emotion or `x_` custom type."""

    _always: ClassVar[frozenset[str]] = frozenset({"type", "uri", "name", "ext"})

    type: str = "icon"
    uri: str = "ccdefault:"
    """`embeded://path` (sic) inside a CHARX, `ccdefault:`, a `data:` URL or an https URL."""
    name: str = "main"
    ext: str = "png"


class CardData(LosslessModel):
    """The card's content: the V3 `data` object (a superset of V1 and V2)."""

    _always: ClassVar[frozenset[str]] = frozenset(
        {*TEXT_FIELDS, "alternate_greetings", "tags", "extensions", "group_only_greetings"}
    )

    name: str = ""
    description: str = ""
    personality: str = ""
    scenario: str = ""
    first_mes: str = ""
    """The greeting: the character speaks first with this."""
    mes_example: str = ""
    """Example dialogue, in blocks that start with `<START>`."""
    creator_notes: str = ""
    """For people, never for the prompt."""
    system_prompt: str = ""
    """Replaces the global system prompt when not empty (`{{original}}` inserts the global one)."""
    post_history_instructions: str = ""
    alternate_greetings: list[str] = Field(default_factory=list)
    """Offered as swipes of the first message."""
    character_book: Lorebook | None = None
    tags: list[str] = Field(default_factory=list)
    creator: str = ""
    character_version: str = ""
    extensions: dict[str, Any] = Field(default_factory=dict)
    """App data, kept exactly (SillyTavern: talkativeness, fav, world, depth_prompt, ...)."""
    # V3 additions
    group_only_greetings: list[str] = Field(default_factory=list)
    assets: list[Asset] | None = None
    nickname: str | None = None
    """Replaces `name` for {{char}} when set."""
    creator_notes_multilingual: dict[str, str] | None = None
    source: list[str] | None = None
    creation_date: int | float | None = None
    """Unix seconds (UTC); 0 means unknown."""
    modification_date: int | float | None = None

    @model_validator(mode="before")
    @classmethod
    def _lenient(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, dict):
            return normalise_card_data(value, "", warner(info))
        return value


class Card(LosslessModel):
    """A character card in memory, whatever file it came from.

    `data` holds the content; any other key the file had at its top level (SillyTavern's
    `avatar`, `chat`, `create_date`, `fav`, ...) is kept as an extra and written back.
    """

    _always: ClassVar[frozenset[str]] = frozenset({"data"})

    data: CardData = Field(default_factory=CardData)

    @model_validator(mode="before")
    @classmethod
    def _lenient(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, dict):
            return normalise_card(value, warner(info))
        return value

    @property
    def name(self) -> str:
        return self.data.name

    @property
    def outer(self) -> dict[str, Any]:
        """The file's top-level keys other than spec, spec_version and data."""
        return dict(self.model_extra or {})


# ------------------------------------------------------------------------- file dictionaries


def card_spec(raw: dict[str, Any]) -> SpecName:
    """Which spec a raw card dict follows: `v3`, `v2`, or `v1` (flat)."""
    spec = raw.get("spec")
    if not isinstance(raw.get("data"), dict):
        return "v1"
    if spec == "chara_card_v3" or (isinstance(spec, str) and "v3" in spec):
        return "v3"
    return "v2"


def card_to_dict(card: Card, spec: Literal["v2", "v3"] = "v3", *, v1_copies: bool = False) -> dict[str, Any]:
    """The card as a file writes it: `spec`, `spec_version`, `data`, then the kept top-level keys.

    `v1_copies` also writes the six V1 fields at the top level, as SillyTavern does for readers
    that only know V1 (used for the V2 `chara` chunk of a PNG).
    """
    dumped = card.to_dict()
    data = dumped.pop("data")
    out: dict[str, Any] = (
        {"spec": "chara_card_v3", "spec_version": "3.0"}
        if spec == "v3"
        else {"spec": "chara_card_v2", "spec_version": "2.0"}
    )
    if v1_copies:
        for key in V1_FIELDS:
            out[key] = data.get(key, "")
    out["data"] = data
    out.update(dumped)
    return out


# ---------------------------------------------------------------------------- normalisation


def normalise_card(raw: dict[str, Any], warn: Warn) -> dict[str, Any]:
    """Repair a raw card dict (any spec) into `{"data": {...}, **other top-level keys}`."""
    raw = dict(raw)
    if isinstance(raw.get("data"), CardData):  # built in Python: nothing to repair
        raw.pop("spec", None)
        raw.pop("spec_version", None)
        return raw
    kind = card_spec(raw)
    spec = raw.pop("spec", None)
    spec_version = raw.pop("spec_version", None)
    if kind == "v1":
        if spec is not None:
            raw["spec"] = spec  # not a wrapper after all: keep whatever it was
        if spec_version is not None:
            raw["spec_version"] = spec_version
        if "name" not in raw and "char_name" in raw:
            moved = [old for old in _PYGMALION if old in raw]
            for old in moved:
                raw[_PYGMALION[old]] = raw.pop(old)
            warn(f"Pygmalion-style card: read {', '.join(moved)} as the V1 fields")
        data_keys = set(CardData.model_fields)
        data = {key: raw.pop(key) for key in list(raw) if key in data_keys}
        if "creator_notes" not in data and isinstance(raw.get("creatorcomment"), str):
            data["creator_notes"] = raw["creatorcomment"]
        return {"data": normalise_card_data(data, "data", warn, quiet_missing=True), **raw}

    data = dict(raw.pop("data"))
    if kind == "v3" and spec_version is not None:
        try:
            if float(spec_version) > 3.0:
                warn(f"card says spec_version {spec_version}, newer than 3.0; unknown fields are kept")
        except (TypeError, ValueError):
            warn(f"card has an odd spec_version {spec_version!r}; read as V3")
    # Hybrid V1/V2 cards repeat data fields at the top level; data wins.
    differs = []
    for key in list(raw):
        if key in CardData.model_fields:
            top = raw.pop(key)
            if key not in data:
                data[key] = top
                warn(f"data.{key} was missing; took the top-level copy")
            elif top != data[key] and not (key == "tags" and isinstance(top, str)):
                differs.append(key)
    if differs:
        warn(
            f"top-level {', '.join(differs)} differ{'s' if len(differs) == 1 else ''} from "
            f"data (a hybrid V1/V2 card); data wins"
        )
    return {"data": normalise_card_data(data, "data", warn), **raw}


def normalise_card_data(
    d: dict[str, Any], prefix: str, warn: Warn, *, quiet_missing: bool = False
) -> dict[str, Any]:
    d = dict(d)
    missing = [key for key in _V2_REQUIRED if key not in d]
    fill_missing(d, TEXT_FIELDS, str)
    fill_missing(d, ("alternate_greetings", "tags", "group_only_greetings"), list)
    if missing and not quiet_missing:
        warn(f"{prefix or 'card'} was missing {', '.join(missing)}; filled with empty values")
    for key in TEXT_FIELDS:
        as_text(d, key, join_path(prefix, key), warn)
    for key in ("nickname",):
        as_text(d, key, join_path(prefix, key), warn, default=None)
    as_text_list(d, "alternate_greetings", join_path(prefix, "alternate_greetings"), warn)
    as_text_list(d, "group_only_greetings", join_path(prefix, "group_only_greetings"), warn)
    as_text_list(d, "tags", join_path(prefix, "tags"), warn, split_commas=True)
    as_text_list(d, "source", join_path(prefix, "source"), warn, null_means_absent=True)
    as_object(d, "extensions", join_path(prefix, "extensions"), warn, required=True, quiet=True)
    for key in ("creation_date", "modification_date"):
        as_number(d, key, join_path(prefix, key), warn)
    book_path = join_path(prefix, "character_book")
    if "character_book" in d:
        book = d["character_book"]
        if book is None:
            del d["character_book"]
            warn(f"{book_path} was null; read as no lorebook")
        elif isinstance(book, list):
            d["character_book"] = normalise_book({"entries": book}, book_path, warn)
            warn(f"{book_path} was a bare list of entries; wrapped it in a lorebook")
        elif isinstance(book, dict):
            d["character_book"] = normalise_book(book, book_path, warn)
    if isinstance(d.get("assets"), list):
        d["assets"] = [
            _normalise_asset(a, join_path(join_path(prefix, "assets"), i), warn)
            for i, a in enumerate(d["assets"])
        ]
    return d


def _normalise_asset(a: Any, path: str, warn: Warn) -> Any:
    if not isinstance(a, dict):
        return a
    a = dict(a)
    for key in ("type", "uri", "name", "ext"):
        if key not in a:
            a[key] = {"type": "icon", "uri": "ccdefault:", "name": "main", "ext": "png"}[key]
            warn(f"{path} was missing {key}; used {a[key]!r}")
        as_text(a, key, join_path(path, key), warn)
    return a


def normalise_book(b: dict[str, Any], prefix: str, warn: Warn) -> dict[str, Any]:
    b = dict(b)
    as_object(b, "extensions", join_path(prefix, "extensions"), warn, required=True)
    entries_path = join_path(prefix, "entries")
    entries = b.get("entries")
    if "entries" not in b or entries is None:
        b["entries"] = []
        warn(f"{entries_path} was {'missing' if 'entries' not in b else 'null'}; read as no entries")
    elif isinstance(entries, dict):
        b["entries"] = list(entries.values())
        warn(f"{entries_path} was an object keyed by id; read its values as the list")
    if isinstance(b["entries"], list):
        b["entries"] = [
            normalise_entry(e, join_path(entries_path, i), warn) if isinstance(e, dict) else e
            for i, e in enumerate(b["entries"])
        ]
    for key in ("name", "description"):
        as_text(b, key, join_path(prefix, key), warn, default=None)
    for key in ("scan_depth", "token_budget"):
        as_number(b, key, join_path(prefix, key), warn)
    as_bool(b, "recursive_scanning", join_path(prefix, "recursive_scanning"), warn)
    return b


def normalise_entry(e: dict[str, Any], prefix: str, warn: Warn) -> dict[str, Any]:
    e = dict(e)
    label = prefix or "lorebook entry"
    missing = []
    for key, default in (("keys", list), ("content", str), ("extensions", dict)):
        if key not in e:
            e[key] = default()
            missing.append(key)
    if "enabled" not in e or e["enabled"] is None:
        e["enabled"] = True
        missing.append("enabled")
    if "insertion_order" not in e or e["insertion_order"] is None:
        e["insertion_order"] = 100
        missing.append("insertion_order")
    if missing:
        warn(f"{label} was missing {', '.join(missing)}; filled with defaults")
    e.setdefault("use_regex", False)
    as_text_list(e, "keys", join_path(prefix, "keys"), warn, split_commas=True)
    as_text_list(
        e, "secondary_keys", join_path(prefix, "secondary_keys"), warn, split_commas=True,
        null_means_absent=True,
    )
    as_text(e, "content", join_path(prefix, "content"), warn)
    as_object(e, "extensions", join_path(prefix, "extensions"), warn, required=True)
    for key in ("enabled", "use_regex"):
        as_bool(e, key, join_path(prefix, key), warn, null_means_absent=False)
    for key in ("constant", "selective", "case_sensitive"):
        as_bool(e, key, join_path(prefix, key), warn)
    for key in ("insertion_order", "priority"):
        as_number(e, key, join_path(prefix, key), warn)
    for key in ("name", "comment"):
        as_text(e, key, join_path(prefix, key), warn, default=None)
    position = e.get("position")
    if isinstance(position, int) and not isinstance(position, bool) and position in _POSITIONS:
        e["position"] = _POSITIONS[position]
        warn(f"{join_path(prefix, 'position')} was the number {position}; read as {e['position']!r}")
    return e
