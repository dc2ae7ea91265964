"""A group's cast: each roster entry matched to its card, with its name, mute state and talkativeness.

A roster names members by card file (or SillyTavern avatar); chats name speakers by the card's
name. `group_members` ties the two together once so every other group function can speak in
names, which is what chat messages, stop strings and `{{char}}` use.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from ..cards.model import Card
from ..cards.roster import GroupRoster
from ..errors import GroupError

__all__ = [
    "DEFAULT_TALKATIVENESS",
    "GroupMember",
    "group_macro",
    "group_members",
    "resolve_member",
    "talkativeness",
]

DEFAULT_TALKATIVENESS = 0.5
"""SillyTavern's `talkativeness_default`: the chance to speak unprompted in natural order."""

CardsArg = Mapping[str, Card] | Sequence[Card]


@dataclass(frozen=True, eq=False)
class GroupMember:
    """One member of a group: the roster entry, its card, and what the group logic needs from it."""

    key: str
    """The roster entry (card file or SillyTavern avatar name)."""
    card: Card
    name: str
    """The card's name: what chat messages, `Name:` prefixes and stop strings use."""
    muted: bool
    talkativeness: float

    @property
    def char(self) -> str:
        """What `{{char}}` becomes for this member: the V3 nickname when set, else the name."""
        return self.card.data.nickname or self.name


def talkativeness(card: Card) -> float:
    """`extensions.talkativeness` as a chance in [0, 1]; SillyTavern stores it as a string or a
    number. Missing, empty or unreadable values give the default 0.5."""
    raw: Any = card.data.extensions.get("talkativeness")
    if raw is None or isinstance(raw, bool):
        return DEFAULT_TALKATIVENESS
    try:
        value = float(raw.strip() if isinstance(raw, str) else raw)
    except (TypeError, ValueError):
        return DEFAULT_TALKATIVENESS
    if math.isnan(value):
        return DEFAULT_TALKATIVENESS
    return min(1.0, max(0.0, value))


def _slug(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def _card_for(entry: str, index: int, roster: GroupRoster, cards: CardsArg) -> Card | None:
    if isinstance(cards, Mapping):
        if entry in cards:
            return cards[entry]
        stem = PurePath(entry).stem
        for key, card in cards.items():
            if key in (stem, PurePath(entry).name) or PurePath(key).name == PurePath(entry).name:
                return card
        for card in cards.values():
            if card.name == entry or _slug(card.name) == _slug(stem):
                return card
        if len(cards) == len(roster.members) and not any(k in roster.members for k in cards):
            return list(cards.values())[index]  # keyed by name, in roster order
        return None
    return cards[index] if index < len(cards) else None


def group_members(roster: GroupRoster, cards: CardsArg) -> list[GroupMember]:
    """The roster's members in order, each with its card.

    `cards` is a mapping keyed by roster entry (or by card name, in roster order), or a sequence
    of cards in roster order (what loading `RosterFile.member_paths()` gives). Raises GroupError
    when a member has no card or the cards do not line up with the roster.
    """
    if not isinstance(cards, Mapping) and len(cards) != len(roster.members):
        raise GroupError(
            f"group {roster.name!r} has {len(roster.members)} members but {len(cards)} cards were given"
        )
    muted = set(roster.muted)
    out: list[GroupMember] = []
    for i, entry in enumerate(roster.members):
        card = _card_for(entry, i, roster, cards)
        if card is None:
            raise GroupError(f"group {roster.name!r}: no card was given for member {entry!r}")
        name = card.name or PurePath(entry).stem
        out.append(
            GroupMember(
                key=entry,
                card=card,
                name=name,
                muted=entry in muted or name in muted,
                talkativeness=talkativeness(card),
            )
        )
    return out


def resolve_member(members: Sequence[GroupMember], who: str) -> GroupMember:
    """The member called `who` (card name first, then roster entry); GroupError if none."""
    for m in members:
        if m.name == who:
            return m
    for m in members:
        if m.key == who:
            return m
    names = ", ".join(repr(m.name) for m in members) or "nobody"
    raise GroupError(f"{who!r} is not a member of this group (members: {names})")


def group_macro(members: Sequence[GroupMember], *, include_muted: bool = True) -> str:
    """`{{group}}`: the members' names joined by ", " (SillyTavern includes muted members)."""
    return ", ".join(m.name for m in members if include_muted or not m.muted)
