"""Stages 3 and 7, the history: each visible message's text (macros frozen per message, the
reasoning rules), the stored memory of evicted turns, and one segment per message.

A long chat changes at its end: `AssemblyCache` keeps what each message became (its text and its
segment) so the next turn redoes only the messages that are new or were edited.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from datetime import datetime
from typing import Any

from .._types import Role
from ..chat import ChatMessage
from ..chatcontext import FROZEN_KEY, ChatIdentity, has_macros, message_text
from ..memory import MEMORY_KEY, StoredMemory, memory_text, stored_memories
from ..reasoning import ReasoningFormat, inline_stripper, prepare_prompt
from ..segments import Segment, SegmentKind, Tier
from ..templates.model import InstructTemplate
from .columns import Columns
from .model import ChatTexts, Identity, Request
from .turn import Turn, TurnTexts

__all__ = ["AssemblyCache", "chat_texts", "memory_segment"]


class AssemblyCache:
    """What assembly reuses across the turns of a chat: each message's text after macros and its
    segment. Hold one per chat (a session, a benchmark's loop) and pass it to every `assemble`;
    without one, every turn converts every message again.

    The messages the chat shares with the last turn up front (the same objects with the same
    id, name, role, text and hidden flag, compared in C) keep their texts and segments; each
    message after them is looked up by id and converted afresh if its text changed. Text with
    macros is expanded every turn. Segments are frozen, so sharing them between turns is safe."""

    def __init__(self) -> None:
        self._plain: dict[str, tuple[str, str]] = {}
        """Message id → (its text as last seen, the text sent) for text without macros."""
        self._segments: dict[str, tuple[str, str, str, str, Segment]] = {}
        """Message id → (text sent, its name, its role, the user's name, its segment)."""
        self._columns = Columns()
        self._turn = Turn()
        self.macros: dict[tuple[object, ...], str] = {}
        """Card, preset and lore texts whose macro expansion is pure (`MacroContext.memo`)."""

    def texts(self, messages: list[ChatMessage], who: ChatIdentity, *, now: datetime | None,
              warnings: list[str], fmt: ReasoningFormat) -> TurnTexts | dict[str, str]:
        """The visible messages' texts this turn, before the reasoning rules of the newest ones
        (`prepare_prompt`): macros expanded and inline reasoning blocks out of replies
        (`inline_stripper`). Keyed by id; a plain dict, unstripped, when an id repeats."""
        try:
            self._update(messages, fmt)
            turn = self._turn
            turn.changed = self._expand(turn, who, now, warnings, inline_stripper(fmt))
        except BaseException:  # half updated: start over next turn rather than trust it
            self._columns, self._turn = Columns(), Turn()
            raise
        texts = turn.view()
        return texts if texts is not None else self._repeated(turn)

    def _update(self, messages: list[ChatMessage], fmt: ReasoningFormat) -> None:
        """Cut the turn back to the first message that changed and add the rest afresh."""
        turn = self._turn
        shared = self._columns.update(messages)
        if fmt != turn.fmt:
            shared = 0  # what was sent depends on the reasoning format
        turn.truncate(shared)
        turn.fmt = fmt
        strip = inline_stripper(fmt)
        for i in range(shared, len(messages)):
            self._add(turn, i, messages[i], strip)
        self._trim(self._plain, len(messages))

    @property
    def turn(self) -> Turn:
        """The visible messages of the latest turn and what they became."""
        return self._turn

    def memories(self) -> list[StoredMemory]:
        """The summaries stored on the latest turn's visible messages, oldest first (the
        messages without one are passed over in C)."""
        turn, columns = self._turn, self._columns
        at = [i - bisect_left(turn.hidden_at, i) for i in columns.holding(MEMORY_KEY)]
        return stored_memories(turn.visible, turn.position, at)

    def _add(self, turn: Turn, at: int, m: ChatMessage, strip: Callable[[str], str]) -> None:
        """Message `at` of the chat, new or changed since the last turn, into the turn."""
        if m.hidden:
            turn.hidden_at.append(at)
            return
        text, plain = self._clean(m.id, m.text)
        if not plain:
            turn.macros.append(len(turn.visible))
        turn.append(m, text, strip(text) if m.role == "assistant" else text)

    def _expand(self, turn: Turn, who: ChatIdentity, now: datetime | None, warnings: list[str],
                strip: Callable[[str], str]) -> bool:
        """Expand the macros of the messages that have them; whether one got new frozen values."""
        changed = False
        for i in turn.macros:
            m = turn.visible[i]
            before = repr(m.extra.get(FROZEN_KEY))
            text = message_text(m, who, now=now, warnings=warnings)
            changed = changed or repr(m.extra.get(FROZEN_KEY)) != before
            turn.raw[i] = text
            turn.sent[i] = strip(text) if m.role == "assistant" else text
        return changed

    def _repeated(self, turn: Turn) -> dict[str, str]:
        """An id repeats: the later message's text stands, as when set one by one, unstripped
        (`prompt_texts` then strips every reply it finds under each id)."""
        return dict(zip(turn.ids, turn.raw, strict=True))

    def _clean(self, mid: str, raw: str) -> tuple[str, bool]:
        """A message's text without carriage returns, and whether it is free of macros."""
        hit = self._plain.get(mid)
        if hit is not None and hit[0] == raw:
            return hit[1], True
        clean = raw.replace("\r", "")
        if has_macros(clean):
            return clean, False
        self._plain[mid] = (raw, clean)
        return clean, True

    def segments(self, texts: ChatTexts, user: str) -> list[Segment]:
        """One `chat_message` segment per visible message, reused while it is unchanged."""
        turn, visible = self._turn, texts.visible
        self._trim(self._segments, len(visible))
        final = texts.texts
        if not isinstance(final, TurnTexts):  # an id repeats: every message's text by its id
            turn.segments = [self._segment(m, final[mid], user) for m, mid in zip(visible, texts.ids, strict=True)]
            turn.fresh, turn.user = 0, ""  # the next turn redoes them all
            return list(turn.segments)
        out = turn.segments
        keep = turn.fresh if turn.user == user else 0
        del out[keep:]
        for i in sorted({*turn.macros, *turn.overridden, *final.changed_at()}):
            if i < keep:  # texts with macros, and the newest ones the reasoning rules touched
                out[i] = self._segment(visible[i], final.at(i), user)
        out += [self._segment(visible[i], final.at(i), user) for i in range(keep, len(visible))]
        turn.user, turn.fresh, turn.overridden = user, len(out), final.changed_at()
        return list(out)

    def _segment(self, m: ChatMessage, text: str, user: str) -> Segment:
        """A message's segment, reused while its text, name, role and the user's name stand."""
        hit = self._segments.get(m.id)
        if hit is not None and hit[0] == text and hit[1] == m.name and hit[2] == m.role and hit[3] == user:
            return hit[4]
        seg = _message_segment(m, text, user)
        self._segments[m.id] = (text, m.name, m.role, user, seg)
        return seg

    @staticmethod
    def _trim(cache: dict[Any, Any], messages: int) -> None:
        """Forget everything once edits and other chats have grown it well past the chat."""
        if len(cache) > 2 * messages + 1024:
            cache.clear()


def _message_segment(m: ChatMessage, text: str, user: str) -> Segment:
    """A message's segment: its role (assistant for anything else), its speaker's name (the
    user's for a nameless user message, none for a system message)."""
    role: Role = m.role if m.role in ("user", "assistant", "system") else "assistant"  # type: ignore[assignment]
    name = None if role == "system" else (m.name or (user if role == "user" else None))
    # built without validation: a new chat converts every message once
    return Segment.model_construct(
        id=f"msg:{m.id}", kind=SegmentKind.CHAT_MESSAGE, role=role, name=name, text=text,
        special=False, pinned=False, tier=Tier.FULL, source=f"chat:{m.id}", message_id=m.id,
        block=None, depth=None, extra={})


def chat_texts(req: Request, ident: Identity, cache: AssemblyCache) -> ChatTexts:
    """The visible messages and the text each sends: macros frozen per message, then the
    reasoning rules (blocks out but for the last N replies, the thinking switch)."""
    fmt = req.instruct.reasoning
    texts = cache.texts(req.chat.messages, ident.who, now=req.now, warnings=ident.warnings, fmt=fmt)
    turn = cache.turn
    stripped = len(turn.ids) if isinstance(texts, TurnTexts) else 0
    prefill = prepare_prompt(turn.visible, texts, fmt, ident.meta, mode=req.mode,
                             header=_own_header(req.instruct), stripped=stripped)
    return ChatTexts(turn.visible, turn.ids, texts, prefill, turn.changed)


def _own_header(instruct: InstructTemplate) -> str:
    """The template's generation header (where a reasoning prefill follows)."""
    if instruct.generation_prompt is not None:
        return instruct.generation_prompt
    return instruct.last_output_sequence or instruct.output_sequence


def memory_segment(memories: list[StoredMemory]) -> list[Segment]:
    """The `memory` segment showing the newest summary stored in the chat (the budget keeps it
    only when something is evicted)."""
    if not memories:
        return []
    newest = memories[-1]
    return [Segment(id="memory", kind=SegmentKind.MEMORY, role="system",
                    text=memory_text(newest.text, "[Summary: {{summary}}]"),
                    source=f"chat:{newest.message_id}:memory", message_id=None)]
