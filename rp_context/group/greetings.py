"""How a new group chat opens: one greeting from each member, as SillyTavern starts a group chat.

Each member's greeting is a seeded pick among its `first_mes`, `alternate_greetings` and the V3
`group_only_greetings` (which exist for exactly this; SillyTavern 1.12.6 ignores them). The
other candidates come back too, so the app can offer them as swipes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ..cards.roster import GroupRoster
from .members import CardsArg, group_members

__all__ = ["GroupGreeting", "group_greetings"]


@dataclass(frozen=True)
class GroupGreeting:
    """One member's opening message (macros such as `{{char}}` not yet expanded)."""

    member: str
    key: str
    """The member's roster entry (SillyTavern's `original_avatar`)."""
    text: str
    options: tuple[str, ...]
    """Every greeting the member has; `text` is one of them."""

    @property
    def index(self) -> int:
        return self.options.index(self.text)


def group_greetings(
    roster: GroupRoster, cards: CardsArg, *, seed: str, include_muted: bool = False
) -> list[GroupGreeting]:
    """A greeting per member in roster order; members without one, and muted members unless
    `include_muted`, are left out. The same `seed` (the new chat's id) gives the same picks."""
    out: list[GroupGreeting] = []
    for m in group_members(roster, cards):
        if m.muted and not include_muted:
            continue
        data = m.card.data
        options = tuple(
            g for g in (data.first_mes, *data.alternate_greetings, *data.group_only_greetings) if g.strip()
        )
        if not options:
            continue
        rng = random.Random(f"{seed}\x1fgreeting\x1f{m.key}")
        out.append(GroupGreeting(m.name, m.key, rng.choice(options), options))
    return out
