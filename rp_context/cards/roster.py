"""Group rosters: who is in a group chat, who is muted, who speaks next, and how cards combine.

rp-context's YAML (`kind: roster`) names members by card file, relative to the roster file.
A SillyTavern group file (`groups/<id>.json`) reads too: its numeric `activation_strategy` and
`generation_mode` become names, `disabled_members` becomes `muted`, and every other key (id,
chat ids, metadata, ...) is kept and written back when saving as SillyTavern JSON.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, ValidationError, ValidationInfo, model_validator

from ..atomic import write_bytes_atomic
from ..errors import CardError
from ._base import LosslessModel, Warn, as_bool, as_number, as_text, as_text_list, warner
from ._files import read_document, write_document

__all__ = [
    "Activation",
    "GenerationMode",
    "GroupRoster",
    "RosterFile",
    "load_roster",
    "roster_from_st",
    "roster_to_st",
    "save_roster",
]

Activation = Literal["natural", "list", "pooled", "manual"]
"""natural: members mentioned by name, then by talkativeness; list: everyone in order;
pooled: someone who has not spoken since the user last did; manual: only when picked."""
GenerationMode = Literal["swap", "join", "join_with_muted"]
"""swap: only the speaker's card; join: every unmuted member's card (the speaker's even when
muted); join_with_muted: every member's card."""

YAML_KIND = "roster"
MAX_ROSTER_BYTES = 4 * 1024 * 1024
_ST_ACTIVATION: dict[int, Activation] = {0: "natural", 1: "list", 2: "manual", 3: "pooled"}
_ST_MODES: dict[int, GenerationMode] = {0: "swap", 1: "join", 2: "join_with_muted"}
_ALIASES = {
    "append": "join",
    "append_disabled": "join_with_muted",
    "join_including_muted": "join_with_muted",
    "join_muted": "join_with_muted",
}
# SillyTavern key → roster field
_ST_KEYS = {
    "name": "name",
    "members": "members",
    "disabled_members": "muted",
    "activation_strategy": "activation",
    "generation_mode": "generation_mode",
    "generation_mode_join_prefix": "join_prefix",
    "generation_mode_join_suffix": "join_suffix",
    "allow_self_responses": "allow_self_responses",
    "auto_mode_delay": "auto_mode_delay",
}


class GroupRoster(LosslessModel):
    """A group chat's cast and rules."""

    _always: ClassVar[frozenset[str]] = frozenset(
        {"name", "members", "muted", "activation", "generation_mode", "join_prefix", "join_suffix",
         "allow_self_responses", "auto_mode_delay"}
    )

    name: str = "Group"
    members: list[str] = Field(default_factory=list)
    """Card files (relative to the roster file) or SillyTavern avatar names, in speaking order."""
    muted: list[str] = Field(default_factory=list)
    """Members who do not speak on their own (SillyTavern's disabled_members)."""
    activation: Activation = "natural"
    generation_mode: GenerationMode = "swap"
    join_prefix: str = ""
    """Before each member's fields in join modes; <FIELDNAME> and {{char}} are replaced."""
    join_suffix: str = ""
    allow_self_responses: bool = False
    """Whether a member may answer itself in natural order."""
    auto_mode_delay: int | float = 5
    """Seconds between turns when the group runs on its own."""

    @model_validator(mode="before")
    @classmethod
    def _lenient(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, dict):
            return _normalise_roster(value, warner(info))
        return value

    def active_members(self) -> list[str]:
        """Members who are not muted, in order."""
        muted = set(self.muted)
        return [m for m in self.members if m not in muted]

    def member_paths(self, base: str | Path) -> list[Path]:
        """Each member as a path under `base` (the roster's folder, or SillyTavern's characters)."""
        root = Path(base)
        return [Path(m) if Path(m).is_absolute() else root / m for m in self.members]


def _normalise_roster(d: dict[str, Any], warn: Warn) -> dict[str, Any]:
    d = dict(d)
    for key in ("name", "join_prefix", "join_suffix"):
        as_text(d, key, key, warn)
    for key in ("members", "muted"):
        as_text_list(d, key, key, warn)
    as_bool(d, "allow_self_responses", "allow_self_responses", warn, null_means_absent=False)
    as_number(d, "auto_mode_delay", "auto_mode_delay", warn)
    for key, table in (("activation", _ST_ACTIVATION), ("generation_mode", _ST_MODES)):
        as_number(d, key, key, warn, integer=True)
        value = d.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            if value in table:
                d[key] = table[value]
            else:
                d[key] = next(iter(table.values()))
                warn(f"{key} {value} is unknown; used {d[key]}")
        elif isinstance(value, str):
            name = value.strip().lower().replace(" ", "_").replace("-", "_")
            name = _ALIASES.get(name, name)
            if name not in table.values():
                d[key] = next(iter(table.values()))
                warn(f"{key} {value!r} is unknown; used {d[key]}")
            else:
                d[key] = name
        elif value is None and key in d:
            del d[key]
    if isinstance(d.get("members"), list) and isinstance(d.get("muted"), list):
        stray = [m for m in d["muted"] if m not in d["members"]]
        if stray:
            warn(f"muted lists {', '.join(map(repr, stray))}, who {'is' if len(stray) == 1 else 'are'} not a member")
    return d


def roster_from_st(raw: dict[str, Any], warn: Warn | None = None) -> GroupRoster:
    """A roster from a SillyTavern group file's JSON."""
    body: dict[str, Any] = {}
    for key, value in raw.items():
        body[_ST_KEYS.get(key, key)] = value
    sink: list[str] = []
    roster = GroupRoster.model_validate(body, context={"warnings": sink})
    for msg in sink:
        (warn or (lambda _m: None))(msg)
    return roster


def roster_to_st(roster: GroupRoster) -> dict[str, Any]:
    """SillyTavern group JSON; a roster that never was one gets a fresh id and chat."""
    out: dict[str, Any] = {}
    extras = dict(roster.model_extra or {})
    if "id" not in extras:
        new_id = str(int(time.time() * 1000))
        extras = {"id": new_id, **extras}
        extras.setdefault("chat_id", new_id)
        extras.setdefault("chats", [new_id])
        extras.setdefault("chat_metadata", {})
        extras.setdefault("fav", False)
        extras.setdefault("avatar_url", "")
    reverse = {v: k for k, v in _ST_KEYS.items()}
    dumped = roster.to_dict()
    activation = {v: k for k, v in _ST_ACTIVATION.items()}
    modes = {v: k for k, v in _ST_MODES.items()}
    for key, value in {**extras, **dumped}.items():
        if key == "activation":
            value = activation[value]
        elif key == "generation_mode":
            value = modes[value]
        out[reverse.get(key, key)] = value
    return out


@dataclass
class RosterFile:
    roster: GroupRoster
    format: Literal["yaml", "json", "sillytavern"]
    path: Path | None = None
    warnings: list[str] = field(default_factory=list)

    def member_paths(self) -> list[Path]:
        """Members resolved against the roster file's folder."""
        base = self.path.parent if self.path is not None else Path.cwd()
        return self.roster.member_paths(base)


def _is_st_group(raw: dict[str, Any]) -> bool:
    return "kind" not in raw and any(
        key in raw for key in ("disabled_members", "activation_strategy", "chat_id", "generation_mode_join_prefix")
    )


def load_roster(path: str | Path) -> RosterFile:
    """Read a roster: rp-context YAML/JSON or a SillyTavern group file."""
    warnings: list[str] = []
    p, raw = read_document(path, "roster", MAX_ROSTER_BYTES, warnings.append)
    if not isinstance(raw, dict):
        raise CardError(p, "a roster file must be a mapping of fields")
    try:
        if _is_st_group(raw):
            return RosterFile(roster_from_st(raw, warnings.append), "sillytavern", p, warnings)
        kind = raw.get("kind")
        if kind is not None and kind != YAML_KIND:
            raise CardError(p, f"this is a {kind!r} file, not a group roster (kind: {YAML_KIND})")
        if "members" not in raw:
            raise CardError(p, "not a group roster: it has no members")
        body = {k: v for k, v in raw.items() if k not in ("kind", "version")}
        roster = GroupRoster.model_validate(body, context={"warnings": warnings})
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        loc = ".".join(str(x) for x in first["loc"] if not str(x).startswith("function-"))
        raise CardError(p, f"{loc or 'roster'}: {first['msg']}") from exc
    fmt: Literal["yaml", "json"] = "json" if p.suffix.lower() == ".json" else "yaml"
    return RosterFile(roster, fmt, p, warnings)


def save_roster(
    roster: GroupRoster | RosterFile,
    path: str | Path,
    *,
    format: Literal["yaml", "json", "sillytavern"] | None = None,
) -> Path:
    """Write a roster atomically: YAML (default), JSON, or a SillyTavern group file."""
    model = roster.roster if isinstance(roster, RosterFile) else roster
    p = Path(path)
    if format is None:
        if isinstance(roster, RosterFile) and roster.format == "sillytavern" and p.suffix.lower() == ".json":
            format = "sillytavern"
        else:
            format = "json" if p.suffix.lower() == ".json" else "yaml"
    if format == "sillytavern":
        text = json.dumps(roster_to_st(model), ensure_ascii=False, indent=4) + "\n"
        try:
            write_bytes_atomic(p, text.encode("utf-8"))
        except OSError as exc:
            raise CardError(p, f"cannot write the roster ({exc.strerror or exc})") from exc
        return p
    doc = {"kind": YAML_KIND, "version": 1, **model.to_dict()}
    if format == "json" and p.suffix.lower() != ".json":
        raise CardError(p, "a JSON roster needs a .json file name")
    return write_document(p, doc, header="# A group roster for rp-context.\n", what="roster")
