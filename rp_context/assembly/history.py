"""Stages 3 and 7, the history: each visible message's text (macros frozen per message, the
reasoning rules), the stored memory of evicted turns, and one segment per message.

A long chat changes at its end: `AssemblyCache` keeps what each message became (its text and its
segment) so the next turn redoes only the messages that are new or were edited.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import compress, repeat
from operator import attrgetter, not_
from typing import Any

from .._types import Role
from ..chat import ChatMessage
from ..chatcontext import FROZEN_KEY, ChatIdentity, has_macros, message_text
from ..memory import MEMORY_KEY, StoredMemory, memory_text, stored_memories
from ..reasoning import ReasoningFormat, inline_stripper, prepare_prompt
from ..segments import Segment, SegmentKind, Tier
from ..templates.model import InstructTemplate
from .model import ChatTexts, Identity, Request

__all__ = ["AssemblyCache", "chat_texts", "memory_segment"]


_ID, _TEXT, _NAME, _ROLE, _HIDDEN, _EXTRA = (attrgetter(a) for a in ("id", "text", "name", "role", "hidden", "extra"))


def _shared(new: Sequence[list[Any]], old: Sequence[list[Any]] | None) -> int:
    """How many leading messages the previous turn's columns `old` share with `new`, compared
    in C a whole column slice at a time: all of them when the chat only grew or shrank at its
    end, else the longest shared prefix (a swipe or an edit near the end costs a few slices)."""
    if old is None:
        return 0
    n = min(len(old[0]), len(new[0]))
    if all((a if len(a) == n else a[:n]) == (b if len(b) == n else b[:n]) for a, b in zip(new, old, strict=True)):
        return n  # the chat grew or shrank at its end: one slice of the longer side per column

    def same(k: int) -> bool:
        return all(a[:k] == b[:k] for a, b in zip(new, old, strict=True))

    if same(n):
        return n
    lo, hi = 0, n - 1  # same(lo) holds, same(hi + 1) does not
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if same(mid) else (lo, mid - 1)
    return lo


@dataclass(frozen=True, slots=True)
class _LastTexts:
    ids: list[str]
    raws: list[str]
    roles: list[str]
    clean: list[str]
    sent: list[str]
    """`clean` with inline reasoning blocks removed from replies (`fmt`'s rule)."""
    fmt: ReasoningFormat | None
    macros: tuple[int, ...]
    """Where the messages with macros are (expanded again every turn)."""


@dataclass(frozen=True, slots=True)
class _LastSegments:
    columns: tuple[list[str], list[str], list[str], list[str]]
    """ids, texts sent, names, roles."""
    user: str
    segments: list[Segment]


class AssemblyCache:
    """What assembly reuses across the turns of a chat: each message's text after macros and its
    segment. Hold one per chat (a session, a benchmark's loop) and pass it to every `assemble`;
    without one, every turn converts every message again.

    The messages the chat shares with the last turn up front (same ids, texts, names and
    roles, compared column by column) take their results whole; each message after them is
    looked up by id and converted afresh if its text, name or role changed.
    Segments are frozen, so sharing them between turns is safe."""

    def __init__(self) -> None:
        self._plain: dict[str, tuple[str, str]] = {}
        """Message id → (its text as last seen, the text sent) for text without macros."""
        self._segments: dict[str, tuple[str, str, str, str, Segment]] = {}
        """Message id → (text sent, its name, its role, the user's name, its segment)."""
        self._last_texts: _LastTexts | None = None
        self._last_segments: _LastSegments | None = None
        self.macros: dict[tuple[object, ...], str] = {}
        """Card, preset and lore texts whose macro expansion is pure (`MacroContext.memo`)."""

    def texts(self, visible: Sequence[ChatMessage], who: ChatIdentity, *, now: datetime | None,
              warnings: list[str], fmt: ReasoningFormat | None = None
              ) -> tuple[list[str], dict[str, str], bool, int]:
        """The message ids, id → text after macros (and, with `fmt`, inline reasoning blocks out
        of replies, `inline_stripper`), whether a message got new frozen macro values, and how
        many leading messages are stripped so (for `prompt_texts`). Text with macros is
        expanded every turn."""
        ids, raws, roles = list(map(_ID, visible)), list(map(_TEXT, visible)), list(map(_ROLE, visible))
        last = self._last_texts
        k = _shared((ids, raws, roles), (last.ids, last.raws, last.roles) if last is not None else None)
        clean = last.clean[:k] if last is not None and k else []
        macros = [i for i in last.macros if i < k] if last is not None and k else []
        self._trim(self._plain, len(visible))
        for i in range(k, len(visible)):
            text, plain = self._clean(ids[i], raws[i])
            clean.append(text)
            if not plain:
                macros.append(i)
        strip = inline_stripper(fmt) if fmt is not None else None
        reuse = k if last is not None and strip is not None and last.fmt == fmt else 0
        sent = last.sent[:reuse] if last is not None and reuse else []
        sent += [strip(clean[i]) if strip is not None and roles[i] == "assistant" else clean[i]
                 for i in range(reuse, len(visible))]
        # repeated ids: the later message's text stands, as when set one by one (and
        # `prompt_texts` strips what it finds under each id, so it gets the texts unstripped)
        texts = dict(zip(ids, sent, strict=True))
        last_of = None
        if len(texts) < len(ids):
            texts = dict(zip(ids, clean, strict=True))
            last_of = {mid: i for i, mid in enumerate(ids)}
        changed = False
        for i in macros:
            m = visible[i]
            before = repr(m.extra.get(FROZEN_KEY))
            text = message_text(m, who, now=now, warnings=warnings)
            changed = changed or repr(m.extra.get(FROZEN_KEY)) != before
            sent[i] = strip(text) if strip is not None and roles[i] == "assistant" else text
            if last_of is None or last_of[ids[i]] == i:
                texts[ids[i]] = sent[i] if last_of is None else text
        self._last_texts = _LastTexts(ids, raws, roles, clean, sent, fmt, tuple(macros))
        return ids, texts, changed, len(ids) if last_of is None and strip is not None else 0

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

    def segments(self, visible: Sequence[ChatMessage], ids: list[str], texts: Mapping[str, str],
                 user: str) -> list[Segment]:
        """One `chat_message` segment per visible message, reused while it is unchanged."""
        columns = (ids, list(map(texts.__getitem__, ids)), list(map(_NAME, visible)),
                   list(map(_ROLE, visible)))
        last = self._last_segments
        same = last is not None and last.user == user
        k = _shared(columns, last.columns if last is not None and same else None)
        out = last.segments[:k] if last is not None and k else []
        self._trim(self._segments, len(visible))
        sent = columns[1]
        out += [self._segment(visible[i], sent[i], user) for i in range(k, len(visible))]
        self._last_segments = _LastSegments(columns, user, out)
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
    messages = req.chat.messages
    visible = list(compress(messages, map(not_, map(_HIDDEN, messages))))  # in C: a long chat
    fmt = req.instruct.reasoning
    ids, texts, changed, stripped = cache.texts(visible, ident.who, now=req.now,
                                                warnings=ident.warnings, fmt=fmt)
    prefill = prepare_prompt(visible, texts, fmt, ident.meta, mode=req.mode,
                             header=_own_header(req.instruct), stripped=stripped)
    return ChatTexts(visible, ids, texts, prefill, changed)


def _own_header(instruct: InstructTemplate) -> str:
    """The template's generation header (where a reasoning prefill follows)."""
    if instruct.generation_prompt is not None:
        return instruct.generation_prompt
    return instruct.last_output_sequence or instruct.output_sequence


def memory_segment(visible: Sequence[ChatMessage]) -> tuple[list[StoredMemory], list[Segment]]:
    """The summaries stored in the chat, and the `memory` segment showing the newest (the
    budget keeps it only when something is evicted)."""
    memories = stored_memories(visible) if _may_hold_memory(visible) else []
    if not memories:
        return memories, []
    newest = memories[-1]
    return memories, [Segment(id="memory", kind=SegmentKind.MEMORY, role="system",
                              text=memory_text(newest.text, "[Summary: {{summary}}]"),
                              source=f"chat:{newest.message_id}:memory", message_id=None)]


def _may_hold_memory(visible: Sequence[ChatMessage]) -> bool:
    """False when no message has anything under the summary key (searched in C): a long chat
    without summaries then skips `stored_memories`' walk."""
    try:
        return any(map(dict.get, map(_EXTRA, visible), repeat(MEMORY_KEY)))
    except TypeError:  # an `extra` that is not a dict: let `stored_memories` judge it
        return True
