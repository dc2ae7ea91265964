"""The card text a group prompt uses: the speaker's alone (swap) or every member's joined (join).

Join follows SillyTavern's `getGroupCharacterCards`: for each member in roster order, each of
description, personality, scenario and example messages becomes
`(prefix ? prefix + sep : '') + value + (suffix ? sep + suffix : '')` (`sep` is a newline when
the instruct template wraps), with `<FIELDNAME>` in the prefix and suffix and `{{char}}`
everywhere standing for that member; members' pieces are joined by newlines. The joined block
does not depend on who speaks (unless a muted member speaks in plain join mode), so the story
string, and llama.cpp's cache of it, stay the same from one speaker to the next.

Every piece is kept with its member, so the inspector can say whose card each character of
the prompt came from.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .._types import Role
from ..cards.roster import GenerationMode, GroupRoster
from .members import CardsArg, GroupMember, group_members, resolve_member

__all__ = [
    "CARD_FIELDS",
    "DEFAULT_GENERATION_MODE",
    "CardField",
    "DepthPrompt",
    "FieldPiece",
    "GroupFields",
    "group_card_fields",
    "included_members",
    "replace_char",
    "resolve_mode",
]

CardField = Literal["description", "personality", "scenario", "mes_example"]
CARD_FIELDS: tuple[CardField, ...] = ("description", "personality", "scenario", "mes_example")
FIELD_LABELS: dict[CardField, str] = {
    "description": "Description",
    "personality": "Personality",
    "scenario": "Scenario",
    "mes_example": "Example Messages",
}
"""What `<FIELDNAME>` becomes in the join prefix and suffix (SillyTavern's labels)."""

DEFAULT_GENERATION_MODE: GenerationMode = "join"
"""Used when the roster does not say: join keeps the card block identical for every speaker."""
DEPTH_PROMPT_DEPTH = 4
DEPTH_PROMPT_ROLE = "system"

PiecePart = Literal["prefix", "value", "suffix", "separator", "override"]
Expand = Callable[[str, GroupMember], str]

_FIELDNAME = re.compile("<FIELDNAME>", re.IGNORECASE)
_CHAR = re.compile(r"\{\{char\}\}|<BOT>|<CHAR>", re.IGNORECASE)


@dataclass(frozen=True)
class FieldPiece:
    """A run of one field's text and where it came from; a field's pieces, concatenated in
    order, are exactly the field's text."""

    field: CardField
    part: PiecePart
    """value: the member's card; prefix/suffix: the roster's join wrappers (and the newline that
    attaches them); separator: the newline between two members; override: the chat's scenario."""
    text: str
    member: str | None
    """The member's name; None for separators and the chat's scenario override."""
    start: int
    """Offset of `text` in the field's text."""

    @property
    def end(self) -> int:
        return self.start + len(self.text)


@dataclass(frozen=True)
class DepthPrompt:
    """A member's `extensions.depth_prompt`: text inserted `depth` messages from the end."""

    member: str
    text: str
    depth: int
    role: Role


@dataclass(frozen=True)
class GroupFields:
    """The card text for one speaker's turn in a group chat."""

    mode: GenerationMode
    speaker: str
    included: tuple[str, ...]
    """Members whose cards are in the block, in roster order."""
    description: str
    personality: str
    scenario: str
    mes_example: str
    pieces: tuple[FieldPiece, ...]
    system_prompt: str
    """The speaker's card system prompt (empty: use the preset's); `{{original}}` left in."""
    post_history_instructions: str
    """The speaker's post-history instructions; `{{original}}` left in."""
    depth_prompts: tuple[DepthPrompt, ...]
    """Depth prompts of the included members (swap: the speaker's only), in roster order."""

    def text(self, field: CardField) -> str:
        return str(getattr(self, field))

    def pieces_of(self, field: CardField) -> list[FieldPiece]:
        return [p for p in self.pieces if p.field == field]

    def owner_at(self, field: CardField, offset: int) -> FieldPiece:
        """The piece holding character `offset` of `field`'s text."""
        for p in self.pieces:
            if p.field == field and p.start <= offset < p.end:
                return p
        raise IndexError(f"{field} has no character at offset {offset}")

    def as_dict(self) -> dict[str, Any]:
        """The four card fields by name, as a story string's parameters want them."""
        return {f: self.text(f) for f in CARD_FIELDS}


def replace_char(text: str, member: GroupMember) -> str:
    """The default member expansion: `{{char}}` (and legacy `<BOT>`/`<CHAR>`) become the member."""
    return _CHAR.sub(lambda _m: member.char, text) if text else text


def resolve_mode(roster: GroupRoster, mode: GenerationMode | None = None) -> GenerationMode:
    """`mode` when given, else the roster's when its file sets one, else join."""
    if mode is not None:
        return mode
    if "generation_mode" in roster.model_fields_set:
        return roster.generation_mode
    return DEFAULT_GENERATION_MODE


def _depth_prompt(member: GroupMember, expand: Expand) -> DepthPrompt | None:
    raw = member.card.data.extensions.get("depth_prompt")
    if not isinstance(raw, dict):
        return None
    prompt = raw.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return None
    text = expand(prompt.strip(), member)
    if not text:
        return None
    try:
        depth = max(0, int(raw.get("depth", DEPTH_PROMPT_DEPTH)))
    except (TypeError, ValueError):
        depth = DEPTH_PROMPT_DEPTH
    role = raw.get("role", DEPTH_PROMPT_ROLE)
    if role not in ("system", "user", "assistant"):
        role = DEPTH_PROMPT_ROLE
    return DepthPrompt(member.name, text, depth, role)


class _FieldBuilder:
    def __init__(self, field: CardField) -> None:
        self.field = field
        self.pieces: list[FieldPiece] = []
        self.length = 0

    def add(self, part: PiecePart, text: str, member: str | None) -> None:
        if text:
            self.pieces.append(FieldPiece(self.field, part, text, member, self.length))
            self.length += len(text)

    @property
    def text(self) -> str:
        return "".join(p.text for p in self.pieces)


def group_card_fields(
    roster: GroupRoster,
    cards: CardsArg,
    speaker: str,
    *,
    mode: GenerationMode | None = None,
    wrap: bool = True,
    scenario_override: str | None = None,
    expand: Expand | None = None,
) -> GroupFields:
    """The card fields for `speaker`'s turn (a name or roster entry).

    swap: only the speaker's fields. join: every unmuted member's fields, and the speaker's even
    when muted. join_with_muted: every member's. `mode` defaults to the roster's (join when the
    roster does not say). `wrap` is the instruct template's: it puts a newline between a join
    prefix/suffix and the text. `scenario_override` (the chat's scenario) replaces the scenario.
    `expand(text, member)` runs the member's macros on its text (default: `{{char}}` only, so
    other macros are left for the assembler's pass).
    """
    members = group_members(roster, cards)
    me = resolve_member(members, speaker)
    mode = resolve_mode(roster, mode)
    run: Expand = expand or replace_char
    included = included_members(members, me, mode)
    sep = "\n" if wrap else ""
    builders = {f: _FieldBuilder(f) for f in CARD_FIELDS}
    for field, b in builders.items():
        if field == "scenario" and scenario_override and scenario_override.strip():
            b.add("override", scenario_override.strip(), None)
            continue
        for m in included:
            value = str(getattr(m.card.data, field) or "").strip()
            if not value:
                continue
            value = run(value, m)
            if b.pieces:
                b.add("separator", "\n", None)
            if mode == "swap":
                b.add("value", value, m.name)
                continue
            label = FIELD_LABELS[field]
            prefix = run(_FIELDNAME.sub(label, roster.join_prefix), m) if roster.join_prefix else ""
            suffix = run(_FIELDNAME.sub(label, roster.join_suffix), m) if roster.join_suffix else ""
            b.add("prefix", prefix + sep if prefix else "", m.name)
            b.add("value", value, m.name)
            b.add("suffix", sep + suffix if suffix else "", m.name)
    depth = [d for m in included if (d := _depth_prompt(m, run)) is not None]
    data = me.card.data
    return GroupFields(
        mode=mode,
        speaker=me.name,
        included=tuple(m.name for m in included),
        description=builders["description"].text,
        personality=builders["personality"].text,
        scenario=builders["scenario"].text,
        mes_example=builders["mes_example"].text,
        pieces=tuple(p for b in builders.values() for p in b.pieces),
        system_prompt=run(data.system_prompt, me) if data.system_prompt else "",
        post_history_instructions=run(data.post_history_instructions, me)
        if data.post_history_instructions
        else "",
        depth_prompts=tuple(depth),
    )


def included_members(members: Sequence[GroupMember], speaker: GroupMember, mode: GenerationMode) -> list[GroupMember]:
    """Whose cards a `mode` prompt for `speaker` holds."""
    if mode == "swap":
        return [speaker]
    if mode == "join":
        return [m for m in members if not m.muted or m is speaker]
    return list(members)
