"""Stages 3 and 7, the history: each visible message's text (macros frozen per message, the
reasoning rules), the stored memory of evicted turns, and one segment per message.

A long chat changes at its end: `AssemblyCache` keeps what each message became (its text and its
segment) so the next turn redoes only the messages that are new or were edited.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from .._types import Role
from ..chat import ChatMessage
from ..chatcontext import FROZEN_KEY, ChatIdentity, has_macros, message_text
from ..memory import StoredMemory, memory_text, stored_memories
from ..reasoning import prepare_prompt
from ..segments import Segment, SegmentKind, Tier
from ..templates.model import InstructTemplate
from .model import ChatTexts, Identity, Request

__all__ = ["AssemblyCache", "chat_texts", "memory_segment"]


class AssemblyCache:
    """What assembly reuses across the turns of a chat: each message's text after macros and its
    segment. Hold one per chat (a session, a benchmark's loop) and pass it to every `assemble`;
    without one, every turn converts every message again. Segments are frozen, so sharing them
    between turns is safe; an edited message (new text, name or role) is converted afresh."""

    def __init__(self) -> None:
        self._plain: dict[str, tuple[str, str]] = {}
        """Message id → (its text as last seen, the text sent) for text without macros."""
        self._segments: dict[tuple[str, str, str | None, Role], Segment] = {}
        """(message id, text sent, name, role) → its segment."""

    def texts(self, visible: Sequence[ChatMessage], who: ChatIdentity, *, now: datetime | None,
              warnings: list[str]) -> tuple[dict[str, str], bool]:
        """Message id → text after macros (as the screen shows it), and whether a message got
        new frozen macro values. Text with macros is expanded every turn (it reads the identity)."""
        self._trim(self._plain, len(visible))
        plain = self._plain
        texts: dict[str, str] = {}
        changed = False
        for m in visible:
            raw = m.text
            hit = plain.get(m.id)
            if hit is not None and (hit[0] is raw or hit[0] == raw):
                texts[m.id] = hit[1]
                continue
            clean = raw.replace("\r", "")
            if not has_macros(clean):
                plain[m.id] = (raw, clean)
                texts[m.id] = clean
                continue
            before = repr(m.extra.get(FROZEN_KEY))
            texts[m.id] = message_text(m, who, now=now, warnings=warnings)
            changed = changed or repr(m.extra.get(FROZEN_KEY)) != before
        return texts, changed

    def segments(self, visible: Sequence[ChatMessage], texts: Mapping[str, str],
                 user: str) -> list[Segment]:
        """One `chat_message` segment per visible message, reused while it is unchanged."""
        self._trim(self._segments, len(visible))
        cache = self._segments
        out: list[Segment] = []
        for m in visible:
            role: Role = m.role if m.role in ("user", "assistant", "system") else "assistant"  # type: ignore[assignment]
            name = None if role == "system" else (m.name or (user if role == "user" else None))
            key = (m.id, texts[m.id], name, role)
            seg = cache.get(key)
            if seg is None:
                seg = cache[key] = _message_segment(m, key[1], role, name)
            out.append(seg)
        return out

    @staticmethod
    def _trim(cache: dict[Any, Any], messages: int) -> None:
        """Forget everything once edits and other chats have grown it well past the chat."""
        if len(cache) > 2 * messages + 1024:
            cache.clear()


def _message_segment(m: ChatMessage, text: str, role: Role, name: str | None) -> Segment:
    # built without validation: a new chat converts every message once
    return Segment.model_construct(
        id=f"msg:{m.id}", kind=SegmentKind.CHAT_MESSAGE, role=role, name=name, text=text,
        special=False, pinned=False, tier=Tier.FULL, source=f"chat:{m.id}", message_id=m.id,
        block=None, depth=None, extra={})


def chat_texts(req: Request, ident: Identity, cache: AssemblyCache) -> ChatTexts:
    """The visible messages and the text each sends: macros frozen per message, then the
    reasoning rules (blocks out but for the last N replies, the thinking switch)."""
    visible = [m for m in req.chat.messages if not m.hidden]
    texts, changed = cache.texts(visible, ident.who, now=req.now, warnings=ident.warnings)
    prefill = prepare_prompt(visible, texts, req.instruct.reasoning, ident.meta, mode=req.mode,
                             header=_own_header(req.instruct))
    return ChatTexts(visible, texts, prefill, changed)


def _own_header(instruct: InstructTemplate) -> str:
    """The template's generation header (where a reasoning prefill follows)."""
    if instruct.generation_prompt is not None:
        return instruct.generation_prompt
    return instruct.last_output_sequence or instruct.output_sequence


def memory_segment(visible: Sequence[ChatMessage]) -> tuple[list[StoredMemory], list[Segment]]:
    """The summaries stored in the chat, and the `memory` segment showing the newest (the
    budget keeps it only when something is evicted)."""
    memories = stored_memories(visible)
    if not memories:
        return memories, []
    newest = memories[-1]
    return memories, [Segment(id="memory", kind=SegmentKind.MEMORY, role="system",
                              text=memory_text(newest.text, "[Summary: {{summary}}]"),
                              source=f"chat:{newest.message_id}:memory", message_id=None)]
