"""Standalone lorebooks: SillyTavern world-info JSON, V3 `lorebook_v3`, a bare `character_book`,
and rp-context's YAML.

A SillyTavern world-info file is read into `WorldInfo`, which mirrors the file exactly (only the
keys it had, explicit nulls kept) so saving it back changes nothing. `to_lorebook()` turns it
into the card-style `Lorebook` the way SillyTavern embeds a world into a card (its own fields go
to each entry's `extensions`); `world_info_from_lorebook()` goes back the way SillyTavern
imports a card's book. Fields SillyTavern does not know ride along in `extensions`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, ValidationError, ValidationInfo, model_validator

from ..atomic import write_bytes_atomic
from ..errors import CardError
from ..files import decode_text, read_limited
from ..safeload import loads_json
from ._base import LosslessModel, Warn, as_bool, as_number, as_text, as_text_list, join_path, warner
from ._yaml import dump_yaml, load_yaml
from .model import Lorebook, LoreEntry

__all__ = [
    "LorebookFile",
    "LorebookFormat",
    "WorldInfo",
    "WorldInfoEntry",
    "load_lorebook",
    "lorebook_from_dict",
    "save_lorebook",
    "world_info_from_lorebook",
]

LorebookFormat = Literal["world_info", "lorebook_v3", "character_book", "yaml"]
YAML_KIND = "lorebook"
MAX_LOREBOOK_BYTES = 32 * 1024 * 1024

# SillyTavern world-info field → the key SillyTavern uses in a card entry's `extensions`.
_WI_TO_EXT = {
    "position": "position",
    "excludeRecursion": "exclude_recursion",
    "displayIndex": "display_index",
    "probability": "probability",
    "useProbability": "useProbability",
    "depth": "depth",
    "selectiveLogic": "selectiveLogic",
    "group": "group",
    "groupOverride": "group_override",
    "groupWeight": "group_weight",
    "preventRecursion": "prevent_recursion",
    "delayUntilRecursion": "delay_until_recursion",
    "scanDepth": "scan_depth",
    "matchWholeWords": "match_whole_words",
    "useGroupScoring": "use_group_scoring",
    "caseSensitive": "case_sensitive",
    "automationId": "automation_id",
    "role": "role",
    "vectorized": "vectorized",
    "sticky": "sticky",
    "cooldown": "cooldown",
    "delay": "delay",
}
_EXT_TO_WI = {v: k for k, v in _WI_TO_EXT.items()}
_WI_CORE = {
    "uid": "id",
    "key": "keys",
    "keysecondary": "secondary_keys",
    "comment": "comment",
    "content": "content",
    "constant": "constant",
    "selective": "selective",
    "order": "insertion_order",
}


class WorldInfoEntry(LosslessModel):
    """One SillyTavern world-info entry; only the keys the file had are written back."""

    uid: int | str | None = None
    key: list[str] = Field(default_factory=list)
    keysecondary: list[str] = Field(default_factory=list)
    comment: str = ""
    content: str = ""
    constant: bool = False
    selective: bool = True
    order: int | float = 100
    """Higher values win the budget and are inserted later (closer to the end)."""
    position: int = 0
    """0 before the card, 1 after, 2/3 author's note top/bottom, 4 at depth, 5/6 examples."""
    disable: bool = False

    @model_validator(mode="before")
    @classmethod
    def _lenient(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, dict):
            return _normalise_wi_entry(value, "", warner(info))
        return value

    @classmethod
    def new(cls, uid: int, keys: list[str], content: str, **fields: Any) -> WorldInfoEntry:
        """An entry with every field SillyTavern writes for a new one."""
        base: dict[str, Any] = {
            "uid": uid, "key": keys, "keysecondary": [], "comment": "", "content": content,
            "constant": False, "vectorized": False, "selective": True, "selectiveLogic": 0,
            "addMemo": False, "order": 100, "position": 0, "disable": False,
            "excludeRecursion": False, "preventRecursion": False, "delayUntilRecursion": False,
            "probability": 100, "useProbability": True, "depth": 4, "group": "",
            "groupOverride": False, "groupWeight": 100, "scanDepth": None, "caseSensitive": None,
            "matchWholeWords": None, "useGroupScoring": None, "automationId": "", "role": None,
            "sticky": 0, "cooldown": 0, "delay": 0, "displayIndex": uid,
        }
        return cls.model_validate({**base, **fields})


class WorldInfo(LosslessModel):
    """A SillyTavern world-info file: `{"entries": {"<uid>": entry, ...}}` plus whatever else."""

    _always: ClassVar[frozenset[str]] = frozenset({"entries"})

    entries: dict[str, WorldInfoEntry] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _lenient(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, dict):
            value = dict(value)
            entries = value.get("entries")
            warn = warner(info)
            if isinstance(entries, list):
                keyed: dict[str, Any] = {}
                for i, entry in enumerate(entries):
                    uid = entry.get("uid", i) if isinstance(entry, dict) else i
                    keyed[str(uid) if str(uid) not in keyed else str(i)] = entry
                value["entries"] = keyed
                warn("entries was a list; keyed it by uid")
            elif entries is None:
                value["entries"] = {}
                if "entries" in value:
                    warn("entries was null; read as no entries")
            if isinstance(value["entries"], dict):
                value["entries"] = {
                    str(k): _normalise_wi_entry(e, f"entries.{k}", warn) if isinstance(e, dict) else e
                    for k, e in value["entries"].items()
                }
        return value

    def to_lorebook(self, name: str | None = None) -> Lorebook:
        """The card-style lorebook, as SillyTavern embeds a world into a card."""
        entries = [_wi_to_entry(entry) for entry in self.entries.values()]
        book = Lorebook(entries=entries)
        if name is not None:
            book.name = name
        return book


def _normalise_wi_entry(e: dict[str, Any], prefix: str, warn: Warn) -> dict[str, Any]:
    e = dict(e)
    for key in ("key", "keysecondary"):
        as_text_list(e, key, join_path(prefix, key), warn, split_commas=True)
    for key in ("comment", "content"):
        as_text(e, key, join_path(prefix, key), warn)
    for key in ("constant", "selective", "disable"):
        as_bool(e, key, join_path(prefix, key), warn, null_means_absent=False)
    for key in ("order", "position"):
        as_number(e, key, join_path(prefix, key), warn, integer=key == "position")
        if e.get(key) is None and key in e:
            del e[key]
            warn(f"{join_path(prefix, key)} was null; read as the default")
    as_number(e, "uid", join_path(prefix, "uid"), warn, integer=True)
    return e


def _wi_to_entry(entry: WorldInfoEntry) -> LoreEntry:
    raw = entry.to_dict()
    out: dict[str, Any] = {}
    ext: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _WI_CORE:
            out[_WI_CORE[key]] = value
        elif key == "disable":
            out["enabled"] = not value
        elif key in _WI_TO_EXT:
            ext[_WI_TO_EXT[key]] = value
        else:
            ext[key] = value  # fields SillyTavern added later, or another app's: kept by name
    out["position"] = "before_char" if raw.get("position", 0) == 0 else "after_char"
    out["extensions"] = ext
    out.setdefault("enabled", True)
    return LoreEntry.model_validate(out)


def world_info_from_lorebook(book: Lorebook) -> tuple[WorldInfo, list[str]]:
    """A SillyTavern world-info file from a card-style lorebook, and what could not be kept."""
    entries: dict[str, Any] = {}
    dropped: set[str] = set()
    for index, entry in enumerate(book.entries):
        ext = dict(entry.extensions)
        uid = entry.id if entry.id is not None else index
        position = ext.pop("position", None)
        if not isinstance(position, int) or isinstance(position, bool):
            position = 0 if entry.position in (None, "before_char") else 1
        wi: dict[str, Any] = {
            "uid": uid,
            "key": list(entry.keys),
            "keysecondary": list(entry.secondary_keys or []),
            "comment": entry.comment or "",
            "content": entry.content,
            "constant": bool(entry.constant),
            "selective": bool(entry.selective),
            "order": entry.insertion_order,
            "position": position,
            "disable": not entry.enabled,
        }
        if entry.case_sensitive is not None and "case_sensitive" not in ext:
            wi["caseSensitive"] = entry.case_sensitive
        for key, value in ext.items():
            wi[_EXT_TO_WI.get(key, key)] = value
        for name in ("name", "priority"):
            if getattr(entry, name) is not None:
                dropped.add(name)
        if entry.use_regex:
            dropped.add("use_regex")
        dropped.update(entry.model_extra or {})
        entries[str(uid) if str(uid) not in entries else str(index)] = wi
    warnings = []
    if dropped:
        warnings.append(
            f"SillyTavern world info has no place for the entry fields {', '.join(sorted(dropped))}; "
            "they were left out"
        )
    return WorldInfo.model_validate({"entries": entries}), warnings


@dataclass
class LorebookFile:
    """A lorebook with its source format, warnings, and the SillyTavern file as read."""

    book: Lorebook
    format: LorebookFormat
    path: Path | None = None
    warnings: list[str] = field(default_factory=list)
    world: WorldInfo | None = None
    """The SillyTavern world-info file exactly as read (format `world_info`), for a lossless save."""


def lorebook_from_dict(
    raw: Any, *, path: Path | None = None, name: str | None = None
) -> LorebookFile:
    """Read any lorebook shape from parsed JSON/YAML."""
    warnings: list[str] = []
    ctx = {"warnings": warnings}
    if not isinstance(raw, dict):
        raise CardError(path, "a lorebook must be a JSON object")
    try:
        if raw.get("kind") == YAML_KIND:
            body = {k: v for k, v in raw.items() if k not in ("kind", "version")}
            return LorebookFile(Lorebook.model_validate(body, context=ctx), "yaml", path, warnings)
        if raw.get("kind") is not None:
            raise CardError(path, f"this is a {raw['kind']!r} file, not a lorebook")
        if raw.get("spec") == "lorebook_v3" or (isinstance(raw.get("data"), dict) and "entries" in raw["data"]):
            book = Lorebook.model_validate(raw.get("data"), context=ctx)
            return LorebookFile(book, "lorebook_v3", path, warnings)
        if isinstance(raw.get("data"), dict):
            raise CardError(path, "this is a character card, not a lorebook (its book is data.character_book)")
        entries = raw.get("entries")
        if isinstance(entries, dict):
            world = WorldInfo.model_validate(raw, context=ctx)
            return LorebookFile(world.to_lorebook(name), "world_info", path, warnings, world)
        if isinstance(entries, list):
            book = Lorebook.model_validate(raw, context=ctx)
            return LorebookFile(book, "character_book", path, warnings)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        loc = ".".join(str(p) for p in first["loc"] if not str(p).startswith("function-"))
        raise CardError(path, f"{loc or 'lorebook'}: {first['msg']}") from exc
    raise CardError(path, "not a lorebook: no entries (SillyTavern world info, lorebook_v3 or character_book)")


def load_lorebook(path: str | Path) -> LorebookFile:
    """Read a lorebook file: SillyTavern world info, `lorebook_v3`, a bare book, or YAML."""
    p, data = read_limited(path, error=CardError, what="lorebook", limit=MAX_LOREBOOK_BYTES)
    text = decode_text(p, data, error=CardError, what="lorebook")
    warnings: list[str] = []
    if p.suffix.lower() in (".yaml", ".yml"):
        raw = load_yaml(text, p, CardError, warnings.append)
    else:
        raw = loads_json(text, path=p, error=CardError, warn=warnings.append)
    loaded = lorebook_from_dict(raw, path=p, name=p.name.split(".", 1)[0])
    loaded.warnings[:0] = warnings
    return loaded


def save_lorebook(
    book: Lorebook | WorldInfo | LorebookFile,
    path: str | Path,
    *,
    format: LorebookFormat | None = None,
) -> list[str]:
    """Write a lorebook atomically; returns warnings about fields the format cannot hold.

    The default format: YAML for .yaml/.yml; otherwise SillyTavern world info for a `WorldInfo`
    or a file that was one, and `lorebook_v3` for a `Lorebook`.
    """
    p = Path(path)
    world = book.world if isinstance(book, LorebookFile) else book if isinstance(book, WorldInfo) else None
    card_book = book.book if isinstance(book, LorebookFile) else book if isinstance(book, Lorebook) else None
    if format is None:
        if p.suffix.lower() in (".yaml", ".yml"):
            format = "yaml"
        elif world is not None:
            format = "world_info"
        else:
            format = "lorebook_v3"
    warnings: list[str] = []
    if card_book is None and world is not None:
        card_book = world.to_lorebook()
    assert card_book is not None
    if format == "world_info":
        if world is None or world.to_lorebook(card_book.name) != card_book:
            world, warnings = world_info_from_lorebook(card_book)  # new, or edited since read
        text = json.dumps(world.to_dict(), ensure_ascii=False, indent=4)
    elif format == "lorebook_v3":
        text = json.dumps({"spec": "lorebook_v3", "data": card_book.to_dict()}, ensure_ascii=False, indent=2)
    elif format == "character_book":
        text = json.dumps(card_book.to_dict(), ensure_ascii=False, indent=2)
    elif format == "yaml":
        text = "# A lorebook for rp-context.\n" + dump_yaml({"kind": YAML_KIND, "version": 1, **card_book.to_dict()})
    else:
        raise ValueError(f"unknown lorebook format {format!r}")
    try:
        write_bytes_atomic(p, (text if text.endswith("\n") else text + "\n").encode("utf-8"))
    except OSError as exc:
        raise CardError(p, f"cannot write the lorebook ({exc.strerror or exc})") from exc
    return warnings
