"""The user's persona: who {{user}} is, and where their description goes in the prompt.

Files are rp-context YAML (`kind: persona`) or the same fields as JSON. A SillyTavern persona
backup (`personas_YYYYMMDD.json`: `personas`, `persona_descriptions`, `default_persona`) also
reads, one persona at a time, with SillyTavern's numeric positions and roles mapped to names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import ValidationError, ValidationInfo, model_validator

from .._types import ROLES, Role
from ..errors import CardError
from ..safeload import flat_name
from ._base import LosslessModel, Warn, as_number, as_text, warner
from ._files import read_document, write_document

__all__ = ["Persona", "PersonaFile", "PersonaPosition", "load_persona", "save_persona", "personas_from_st_backup"]

PersonaPosition = Literal["in_prompt", "top_an", "bottom_an", "at_depth", "none"]
YAML_KIND = "persona"
MAX_PERSONA_BYTES = 4 * 1024 * 1024

# SillyTavern's persona_description_positions (1, AFTER_CHAR, is deprecated: same as 0).
_ST_POSITIONS: dict[int, PersonaPosition] = {0: "in_prompt", 1: "in_prompt", 2: "top_an", 3: "bottom_an", 4: "at_depth", 9: "none"}
_ST_ROLES: dict[int, Role] = dict(enumerate(ROLES))
_POSITION_NAMES = {"in_prompt", "top_an", "bottom_an", "at_depth", "none"}


class Persona(LosslessModel):
    """The user's side of the roleplay."""

    _always: ClassVar[frozenset[str]] = frozenset({"name", "description", "position", "depth", "role"})

    name: str = "User"
    """The name {{user}} becomes."""
    description: str = ""
    """Who the user is; goes into the prompt at `position`."""
    position: PersonaPosition = "in_prompt"
    """in_prompt (the story string's {{persona}}), top_an / bottom_an (around the author's note),
    at_depth (`depth` messages from the end, as `role`), or none."""
    depth: int = 2
    role: Role = "system"
    lorebook: str | None = None
    """A lorebook that belongs to this persona (a file name or SillyTavern world name)."""

    @model_validator(mode="before")
    @classmethod
    def _lenient(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, dict):
            return _normalise_persona(value, warner(info))
        return value


def _normalise_persona(d: dict[str, Any], warn: Warn) -> dict[str, Any]:
    d = dict(d)
    for key in ("name", "description"):
        as_text(d, key, key, warn)
    as_text(d, "lorebook", "lorebook", warn, default=None)
    if d.get("lorebook") == "":
        d["lorebook"] = None
    as_number(d, "depth", "depth", warn, integer=True)
    as_number(d, "position", "position", warn, integer=True)
    as_number(d, "role", "role", warn, integer=True)
    position = d.get("position")
    if isinstance(position, int) and not isinstance(position, bool):
        if position in _ST_POSITIONS:
            d["position"] = _ST_POSITIONS[position]
        else:
            d["position"] = "in_prompt"
            warn(f"position {position} is unknown; used in_prompt")
    elif isinstance(position, str) and position.lower() not in _POSITION_NAMES:
        warn(f"position {position!r} is unknown; used in_prompt")
        d["position"] = "in_prompt"
    elif isinstance(position, str):
        d["position"] = position.lower()
    role = d.get("role")
    if isinstance(role, int) and not isinstance(role, bool):
        d["role"] = _ST_ROLES.get(role, "system")
    elif isinstance(role, str):
        d["role"] = role.lower()
    elif role is None and "role" in d:
        d["role"] = "system"
    return d


@dataclass
class PersonaFile:
    persona: Persona
    format: Literal["yaml", "json", "st_backup"]
    path: Path | None = None
    warnings: list[str] = field(default_factory=list)


def personas_from_st_backup(raw: dict[str, Any], warn: Warn) -> list[Persona]:
    """Every persona in a SillyTavern persona backup, in file order."""
    names = raw.get("personas")
    descriptions = raw.get("persona_descriptions") or {}
    if not isinstance(names, dict) or not isinstance(descriptions, dict):
        raise ValueError("personas and persona_descriptions must be objects")
    out = []
    for avatar, name in names.items():
        desc = descriptions.get(avatar)
        body = dict(desc) if isinstance(desc, dict) else {}
        body["name"] = name
        body.setdefault("avatar", avatar)
        sink: list[str] = []
        out.append(Persona.model_validate(body, context={"warnings": sink}))
        for msg in sink:
            warn(f"persona {name!r}: {msg}")
    return out


def load_persona(path: str | Path, *, name: str | None = None) -> PersonaFile:
    """Read a persona file; from a SillyTavern backup, the persona called `name` (or the default)."""
    warnings: list[str] = []
    p, raw = read_document(path, "persona", MAX_PERSONA_BYTES, warnings.append)
    if not isinstance(raw, dict):
        raise CardError(p, "a persona file must be a mapping of fields")
    try:
        if "personas" in raw and "persona_descriptions" in raw:
            personas = personas_from_st_backup(raw, warnings.append)
            if not personas:
                raise CardError(p, "the SillyTavern persona backup has no personas")
            chosen = _choose(personas, raw, name, p)
            chosen.name = flat_name(chosen.name, warnings.append, "persona name")
            return PersonaFile(chosen, "st_backup", p, warnings)
        kind = raw.get("kind")
        if kind is not None and kind != YAML_KIND:
            raise CardError(p, f"this is a {kind!r} file, not a persona (kind: {YAML_KIND})")
        if kind is None and ("spec" in raw or "data" in raw or "first_mes" in raw):
            raise CardError(p, "this is a character card, not a persona")
        body = {k: v for k, v in raw.items() if k not in ("kind", "version")}
        persona = Persona.model_validate(body, context={"warnings": warnings})
        persona.name = flat_name(persona.name, warnings.append, "persona name")
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        loc = ".".join(str(x) for x in first["loc"] if not str(x).startswith("function-"))
        raise CardError(p, f"{loc or 'persona'}: {first['msg']}") from exc
    except ValueError as exc:
        raise CardError(p, str(exc)) from exc
    fmt: Literal["yaml", "json"] = "json" if p.suffix.lower() == ".json" else "yaml"
    return PersonaFile(persona, fmt, p, warnings)


def _choose(personas: list[Persona], raw: dict[str, Any], name: str | None, p: Path) -> Persona:
    if name is not None:
        for persona in personas:
            if persona.name == name:
                return persona
        raise CardError(p, f"no persona named {name!r} in the backup (it has {', '.join(x.name for x in personas)})")
    default = raw.get("default_persona")
    for persona in personas:
        if default is not None and (persona.model_extra or {}).get("avatar") == default:
            return persona
    if len(personas) == 1:
        return personas[0]
    raise CardError(
        p, f"the backup has {len(personas)} personas; name one ({', '.join(x.name for x in personas)})"
    )


def save_persona(persona: Persona | PersonaFile, path: str | Path) -> Path:
    """Write a persona atomically: JSON for .json, rp-context YAML otherwise."""
    model = persona.persona if isinstance(persona, PersonaFile) else persona
    p = Path(path)
    body = model.to_dict()
    doc = body if p.suffix.lower() == ".json" else {"kind": YAML_KIND, "version": 1, **body}
    return write_document(p, doc, header="# A user persona for rp-context.\n", what="persona")
