"""Stage 4, world info: scan the chat with the lorebooks and say where each fired entry goes.

The scan reads the newest messages only as far back as it looks (the scan depth, or an entry's
own), so a long chat costs no more than a short one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..cards.model import Lorebook
from ..chat import ChatMessage
from ..segments import SegmentKind
from ..tokens import TiktokenCounter
from ..worldinfo import (
    ScanMessage,
    WorldInfoResult,
    WorldInfoSettings,
    activate_world_info,
)
from .model import ChatTexts, Identity, LorePlacement, Request

__all__ = ["activate_lore", "place_lore"]


def activate_lore(req: Request, ident: Identity, chat: ChatTexts) -> WorldInfoResult | None:
    """Which entries of the cards' books and the extra lorebooks fire; None without a book."""
    books = [b for b in (*_card_books(req, ident), *req.lorebooks) if b is not None]
    if not books:
        return None
    counter = req.counter if req.counter is not None else TiktokenCounter()
    return activate_world_info(
        books,
        _ScanView(chat.visible, chat.texts),
        settings=req.settings.world_info or WorldInfoSettings(),
        counter=counter,
        max_context_tokens=req.max_context,
        seed=f"{ident.who.chat_id}:{len(chat.visible)}",
        macro_ctx=ident.ctx(),
    )


def place_lore(result: WorldInfoResult | None, keyword_lore: str | None) -> LorePlacement:
    """Before/after entries for the story string; with `keyword_lore="tail"` the keyword ones
    (not constant) move to the tail, keeping the kind of the slot they came from."""
    if result is None:
        return LorePlacement(None, [], [], [])
    before, after = list(result.before), list(result.after)
    if keyword_lore != "tail":
        return LorePlacement(result, before, after, [])
    moved = [(e, SegmentKind.WORLD_INFO_BEFORE) for e in before if not e.unconditional]
    moved += [(e, SegmentKind.WORLD_INFO_AFTER) for e in after if not e.unconditional]
    return LorePlacement(result, [e for e in before if e.unconditional],
                         [e for e in after if e.unconditional], moved)


def _card_books(req: Request, ident: Identity) -> list[Lorebook | None]:
    """The cards' own books: every member's in a joined group, else the speaker's."""
    if req.roster is not None and req.roster.generation_mode != "swap":
        return [c.data.character_book for c in req.cards]
    return [ident.card.data.character_book]


@dataclass(frozen=True, slots=True)
class _Scan:
    """A message as world info scans it: its author and its text after macros."""

    name: str
    text: str


class _ScanView(Sequence[ScanMessage]):
    """The visible messages as the scan reads them, each built only when the scan reaches it:
    the message itself, or its author and text where macros changed the text."""

    def __init__(self, visible: Sequence[ChatMessage], texts: Mapping[str, str]) -> None:
        self._visible = visible
        self._texts = texts

    def __len__(self) -> int:
        return len(self._visible)

    def __getitem__(self, index):  # type: ignore[no-untyped-def, override]
        if isinstance(index, slice):
            return [self._one(m) for m in self._visible[index]]
        return self._one(self._visible[index])

    def _one(self, m: ChatMessage) -> ScanMessage:
        text = self._texts[m.id]
        return m if text is m.text else _Scan(m.name, text)
