"""Who speaks next in a group chat: SillyTavern's natural, list, pooled and manual strategies.

Every random choice comes from a `random.Random` seeded with the caller's `seed` string (the
assembler passes the chat id and the message count), so the same chat state always picks the
same speakers, and a re-render of the same turn never changes its mind.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..cards.roster import Activation, GroupRoster
from .members import CardsArg, GroupMember, group_members, resolve_member

__all__ = ["HistoryItem", "as_history", "mentioned_members", "pick_speakers"]

_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class HistoryItem:
    """What speaker selection reads from a chat message."""

    name: str
    is_user: bool
    text: str
    hidden: bool = False
    system: bool = False
    """A narrator/system message: nobody's turn."""
    avatar: str | None = None
    """SillyTavern's `original_avatar`: the roster entry of the member who wrote it."""


def _get(msg: Any, *keys: str) -> Any:
    for key in keys:
        if isinstance(msg, Mapping):
            if key in msg:
                return msg[key]
        elif hasattr(msg, key):
            return getattr(msg, key)
    return None


def as_history(messages: Sequence[Any]) -> list[HistoryItem]:
    """Read chat messages of any shape: rp-context `ChatMessage`s, SillyTavern JSONL dicts
    (`name`, `is_user`, `mes`, `is_system`, `original_avatar`) or OpenAI-style dicts."""
    out: list[HistoryItem] = []
    for msg in messages:
        if isinstance(msg, HistoryItem):
            out.append(msg)
            continue
        role = _get(msg, "role")
        is_user = _get(msg, "is_user")
        if is_user is None:
            is_user = role == "user"
        text = _get(msg, "text", "mes", "content")
        extra = _get(msg, "extra")
        avatar = _get(msg, "original_avatar")
        if avatar is None and isinstance(extra, Mapping):
            avatar = extra.get("original_avatar")
        hidden = _get(msg, "hidden")
        if hidden is None:  # SillyTavern's is_system marks hidden and UI messages
            hidden = _get(msg, "is_system")
        narrator = role == "system" or (isinstance(extra, Mapping) and extra.get("type") == "narrator")
        out.append(
            HistoryItem(
                name=str(_get(msg, "name") or ""),
                is_user=bool(is_user),
                text=text if isinstance(text, str) else "",
                hidden=bool(hidden),
                system=bool(narrator),
                avatar=avatar if isinstance(avatar, str) else None,
            )
        )
    return out


def _author(item: HistoryItem, members: Sequence[GroupMember]) -> GroupMember | None:
    """The member who wrote `item`: by SillyTavern's original_avatar, else by name."""
    if item.is_user or item.system:
        return None
    if item.avatar:
        for m in members:
            if m.key == item.avatar:
                return m
    for m in members:
        if m.name == item.name:
            return m
    return None


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def mentioned_members(text: str, members: Sequence[GroupMember]) -> list[GroupMember]:
    """Members named in `text`, in the order the text names them.

    A member is mentioned when a whole word of the text equals a whole word of its name
    (case-insensitive), so "Ann" does not wake "Anna" and "Wren" wakes "Wren Halloway". As in
    SillyTavern, each word of the text wakes at most one member: the first in roster order.
    """
    out: list[GroupMember] = []
    name_words = [(m, set(_words(m.name))) for m in members]
    for word in _words(text):
        for m, words in name_words:
            if word in words:
                if m not in out:
                    out.append(m)
                break
    return out


def _natural(
    members: list[GroupMember],
    activation_text: str,
    banned: GroupMember | None,
    rng: random.Random,
) -> list[GroupMember]:
    eligible = [m for m in members if m is not banned]
    picked = [m for m in mentioned_members(activation_text, members) if m is not banned]
    chatty: list[GroupMember] = []
    shuffled = list(eligible)
    rng.shuffle(shuffled)
    for m in shuffled:
        roll = rng.random()
        # `>` rather than SillyTavern's `>=`: talkativeness 0 means "only when mentioned" even
        # on the (1 in 2**53) roll of exactly 0.
        if m.talkativeness > roll:
            picked.append(m)
        if m.talkativeness > 0:
            chatty.append(m)
    if not picked and chatty:
        picked.append(rng.choice(chatty))
    seen: list[GroupMember] = []
    for m in picked:
        if m not in seen:
            seen.append(m)
    return seen


def _pooled(
    members: list[GroupMember],
    history: list[HistoryItem],
    last: GroupMember | None,
    user_typed: bool,
    all_members: list[GroupMember],
    rng: random.Random,
) -> list[GroupMember]:
    spoken: set[str] = set()
    if not user_typed:
        for item in reversed(history):
            if item.is_user:
                break
            author = _author(item, all_members)
            if author is not None and not item.hidden:
                spoken.add(author.key)
    fresh = [m for m in members if m.key not in spoken]
    if fresh:
        return [rng.choice(fresh)]
    others = [m for m in members if len(members) == 1 or m is not last]
    return [rng.choice(others)] if others else []


def pick_speakers(
    roster: GroupRoster,
    cards: CardsArg,
    history: Sequence[Any],
    *,
    seed: str,
    strategy: Activation | None = None,
    activation_text: str | None = None,
    user_typed: bool = False,
    forced: str | None = None,
) -> list[str]:
    """The names of the members who reply next, in the order they reply.

    - natural: members mentioned in `activation_text` (first mention first), then each member
      who wins a talkativeness roll (in a seeded shuffled order), then, if nobody, a random
      member with talkativeness > 0. The last speaker is left out unless the roster allows
      self-responses or the user just typed. Several members may reply, one after another.
    - list: every unmuted member, in roster order.
    - pooled: one random member who has not spoken since the user's last message; when all
      have, a random member other than the last speaker.
    - manual: nobody, unless `forced`.

    Muted members never speak on their own; `forced` (a name or roster entry) always speaks,
    muted or not. `activation_text` defaults to the last visible message's text (SillyTavern's
    behaviour for auto mode and empty input). `seed` makes the random parts repeatable.
    """
    members = group_members(roster, cards)
    if forced is not None:
        return [resolve_member(members, forced).name]
    strategy = strategy or roster.activation
    items = [item for item in as_history(history) if not item.hidden]
    last_item = items[-1] if items else None
    last = _author(last_item, members) if last_item is not None else None
    active = [m for m in members if not m.muted]
    rng = random.Random(f"{seed}\x1f{strategy}")
    if strategy == "list":
        chosen = active
    elif strategy == "manual":
        chosen = []
    elif strategy == "pooled":
        chosen = _pooled(active, items, last, user_typed, members, rng)
    else:
        if activation_text is None:
            activation_text = last_item.text if last_item is not None else ""
        banned = None if (roster.allow_self_responses or user_typed) else last
        chosen = _natural(active, activation_text, banned, rng)
    return [m.name for m in chosen]
