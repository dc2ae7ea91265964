"""Keeping a group reply to its speaker: stop strings at other members' names, and trimming.

A model asked to write one member's reply often carries on as someone else (`\\nBob: ...`).
Stop strings end generation there; `trim_reply` cuts whatever got through (a backend without
stop strings, a stop split across tokens), as SillyTavern does unless group trimming is off.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .members import GroupMember

__all__ = ["member_stop_strings", "others", "trim_reply"]


Names = Iterable[str | GroupMember]


def others(speaker: str, members: Names, user: str | None) -> list[str]:
    """Every name in the chat but the speaker's: the other members (pass all of them, muted
    too), then the user; no repeats. Members may be names or `GroupMember`s."""
    out: list[str] = []
    names = [m.name if isinstance(m, GroupMember) else m for m in members]
    for name in [*names, *([user] if user else [])]:
        if name and name != speaker and name not in out:
            out.append(name)
    return out


def member_stop_strings(speaker: str, members: Names, user: str | None) -> list[str]:
    """`\\nName:` for every other member (muted ones too) and the user."""
    from ..templates.stops import name_stops

    return name_stops(others(speaker, members, user))


def trim_reply(text: str, speaker: str, members: Names, user: str | None) -> str:
    """`text` without a leading `Speaker:` (and whitespace before it) and cut where another member or the user starts a
    line with `Name:` (SillyTavern's `(^|\\n)Other:`); trailing whitespace before a cut goes too.

    The colon keeps names that prefix others apart: "Anna: hi" is not cut for "Ann".
    """
    if speaker:
        lead = re.match(r"\s*" + re.escape(speaker) + r":[ \t]*", text)
        if lead:
            text = text[lead.end() :]
    names = others(speaker, members, user)
    if not names:
        return text
    pattern = re.compile(
        r"(?:^|\n)(?:" + "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True)) + r"):"
    )
    m = pattern.search(text)
    if m is None:
        return text
    return text[: m.start()].rstrip()
