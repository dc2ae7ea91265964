"""Stage 1, identity: the chat's id, the user's name, the cast, the speaker and the macro context."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from ..cards.model import Card
from ..chatcontext import FROZEN_KEY, frozen_store, identify
from ..errors import RPContextError
from .model import Identity, Request

__all__ = ["resolve_identity"]


def resolve_identity(req: Request, speaker: str | None, warnings: list[str],
                     memo: dict[tuple[object, ...], str] | None = None) -> Identity:
    """Who is in the chat and who speaks next (default: the first member); a typed error when
    there is no card or the speaker has none. `memo` keeps pure macro expansions across turns."""
    if not req.cards:
        raise RPContextError("assemble needs at least one card")
    by_name: dict[str, Card] = {}
    for card in req.cards:
        by_name.setdefault(card.data.name, card)
    who = identify(req.chat, req.cards, roster=req.roster, persona=req.persona, warn=warnings.append)
    speaker = who.members[0] if speaker is None else speaker
    if speaker not in by_name:
        raise RPContextError(f"speaker {speaker!r} is not one of the cards ({', '.join(by_name)})")
    header = req.chat.header
    meta = header.chat_metadata if header is not None else {}
    frozen_before = repr(meta.get(FROZEN_KEY))
    group = len(who.members) > 1
    return Identity(
        who=who,
        speaker=speaker,
        card=by_name[speaker],
        by_name=by_name,
        joined=group and (req.roster is None or req.roster.generation_mode != "swap"),
        meta=meta,
        card_frozen=frozen_store(meta) if header is not None else {},
        frozen_before=frozen_before,
        clock=_clock(req.now, who.created),
        warnings=warnings,
        memo=memo,
    )


def _clock(now: datetime | None, created: datetime | None) -> Callable[[], datetime]:
    """When card text happens: `now` if given, else when the chat began, else the wall clock."""
    if now is not None:
        return lambda: now
    if created is not None:
        return lambda: created
    return lambda: datetime.now().astimezone()
