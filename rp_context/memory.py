"""Memory of evicted turns: a summary the model writes, stored in the chat, shown before history.

Stored the way SillyTavern's Summarize extension stores it: the summary text in `extra.memory`
of the newest message it covers, so chats move both ways. Ours adds `extra.rp_context_memory`
with `front`, the id of the oldest message the prompt kept when it was written: a summary is
shown only once the prompt's front has moved past that point, so the memory changes only when
the history's front changes anyway (no extra cache miss). Rendering reads what is stored and
never writes; `summarize` (run after a reply) is the one writer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import compress, count, repeat
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from .segments import Segment, SegmentKind, Tier

if TYPE_CHECKING:
    from .budget import FittedPrompt
    from .chat import Chat, ChatMessage
    from .policy import BudgetPolicy

__all__ = [
    "MEMORY_KEY",
    "META_KEY",
    "StoredMemory",
    "stored_memories",
    "choose_memory",
    "memory_text",
    "memory_due",
    "SummaryRequest",
    "summary_request",
    "summary_segments",
    "summarize",
    "store_memory",
]

MEMORY_KEY = "memory"
"""SillyTavern Summarize's key in a message's `extra`."""
META_KEY = "rp_context_memory"
"""Ours: `{"front": <oldest kept message id when written>}`."""


@dataclass(frozen=True, slots=True)
class StoredMemory:
    """A summary stored on message `index` (`message_id`), covering every message up to it."""

    index: int
    message_id: str
    text: str
    front: int | None
    """Index of the oldest message kept when it was written (None: unknown, e.g. SillyTavern)."""


def stored_memories(messages: Sequence[ChatMessage], index: Mapping[str, int] | None = None,
                    at: Sequence[int] | None = None) -> list[StoredMemory]:
    """Every stored summary, oldest first (messages as the prompt sees them, hidden ones out).
    `index` (message id → position, the last one for a repeated id) and `at` (the positions
    that may hold one, in order) save finding them; those without one are passed over in C."""
    at = _holding(messages) if at is None else at
    if at and index is None:
        index = dict(zip(map(attrgetter("id"), messages), count()))
    out: list[StoredMemory] = []
    for i in at:
        m = messages[i]
        text = m.extra.get(MEMORY_KEY) if isinstance(m.extra, dict) else None
        if not isinstance(text, str) or not text.strip():
            continue
        meta = m.extra.get(META_KEY)
        front_id = meta.get("front") if isinstance(meta, dict) else None
        front = index.get(str(front_id)) if front_id and index is not None else None
        out.append(StoredMemory(i, m.id, text.strip(), front))
    return out


def _holding(messages: Sequence[ChatMessage]) -> list[int]:
    """Where a message has something under the summary key (every message when an `extra` is
    not a dict: the caller's checks judge those)."""
    try:
        return list(compress(count(), map(dict.get, map(attrgetter("extra"), messages), repeat(MEMORY_KEY))))
    except TypeError:
        return list(range(len(messages)))


def choose_memory(memories: Sequence[StoredMemory], front: int | None) -> StoredMemory | None:
    """The summary to show when the prompt keeps messages from index `front` on.

    The newest one written before the front last moved: its recorded front is older than the
    current one (or unknown). Deterministic from the chat; nothing is shown with no front.
    """
    if front is None:
        return None
    for mem in reversed(memories):
        if mem.front is None or mem.front < front:
            return mem
    return None


def memory_text(summary: str, template: str) -> str:
    """The memory segment's text: the summary in the policy's template."""
    return template.replace("{{summary}}", summary.strip())


def memory_due(fitted: FittedPrompt, memories: Sequence[StoredMemory], policy: BudgetPolicy,
               n_messages: int) -> bool:
    """Should a summary be written after this reply?

    Only when the next turn may evict (the prompt plus two more turns like the last would not
    fit), so the summary covers everything the next eviction takes. Then: none yet, or (chunked)
    the front moved since the newest was written, or (per-message and shift, whose front moves
    every turn) the newest covers at most the next two kept messages.
    """
    r = fitted.report
    if not policy.memory or r.front_index is None or n_messages == 0:
        return False
    turn = sum(row["tokens"] for row in [x for x in r.segments if x["kind"] == "chat_message"
                                         and x["status"] == "kept"][-2:])
    if r.tokens + 2 * turn < r.budget:
        return False
    if not memories:
        return True
    newest = memories[-1]
    if policy.eviction == "chunked":
        return newest.front is None or newest.front != r.front_index
    return newest.index + 1 - r.front_index <= 2


def summary_segments(fitted: FittedPrompt, policy: BudgetPolicy) -> list[Segment]:
    """SillyTavern's "classic" summary request: the current prompt up to its volatile tail, then
    the summary instruction as a system turn and the generation header, so the backend reuses
    its cache for everything before the tail."""
    words = max(8, policy.memory_length * 3 // 4)
    instruction = policy.memory_prompt.replace("{{words}}", str(words))
    keep = [s for s in fitted.segments if s.kind not in (SegmentKind.POST_HISTORY,
                                                         SegmentKind.GENERATION_HEADER)]
    header = next(s for s in fitted.assembled.segments if s.kind == SegmentKind.GENERATION_HEADER)
    ask = Segment.model_construct(
        id="memory:request", kind=SegmentKind.POST_HISTORY, role="system", name=None,
        text=instruction, special=False, pinned=True, tier=Tier.FULL, source="preset:budget",
        message_id=None, block=None, depth=None, extra={})
    return [*keep, ask, header]


@dataclass(frozen=True)
class SummaryRequest:
    """The summary request as sent: its token ids, its text (for a server that does not speak
    the model's tokenizer) and stop strings, the newest message it shows (the summary covers up
    to there), and how long the summary may be."""

    ids: list[int]
    text: str
    stop: list[str]
    covers: str
    max_tokens: int


def summary_request(fitted: FittedPrompt, policy: BudgetPolicy, counter: Any) -> SummaryRequest:
    """The classic summary request for `fitted`, its newest messages left out while the summary
    would not fit beside it (the prompt stays a prefix of the cached one; a later summary covers
    them). BudgetError when not even the oldest kept message leaves room."""
    from .budget import request_ids
    from .errors import BudgetError

    want = min(policy.memory_length, max(16, int(policy.memory_share * fitted.report.budget)))
    segments = summary_segments(fitted, policy)
    while True:
        ids, stop, text = request_ids(fitted, segments, counter)
        room = fitted.report.n_ctx - len(ids)
        shown = [i for i, s in enumerate(segments) if s.kind == SegmentKind.CHAT_MESSAGE]
        if shown and (room >= want or (room >= 16 and len(shown) == 1)):
            covers = segments[shown[-1]].message_id or ""
            return SummaryRequest(ids, text, stop, covers, min(want, room))
        if len(shown) <= 1:
            raise BudgetError(f"no room for a summary: the request is {len(ids)} tokens of "
                              f"{fitted.report.n_ctx}")
        del segments[shown[-1]]


def summarize(backend: Any, fitted: FittedPrompt, counter: Any, policy: BudgetPolicy,
              sampler: Any) -> tuple[str, str]:
    """Ask `backend` for the summary (blocking; run it after the reply is shown): the request's
    ids, and its text for a server that takes text; returns the summary and the id of the newest
    message it covers."""
    from .backends.base import PromptInput

    request = summary_request(fitted, policy, counter)
    settings = sampler.model_copy(update={"max_tokens": request.max_tokens}) if sampler is not None else None
    prompt = PromptInput(ids=tuple(request.ids), text=request.text)
    stream = backend.stream(prompt, sampler=settings, stop=request.stop)
    text = ""
    try:
        for piece in stream:
            text += piece
    finally:
        stream.close()
    return _clean(text), request.covers


def _clean(text: str) -> str:
    text = text.strip()
    for lead in ("[Summary:", "Summary:"):
        if text.startswith(lead):
            text = text[len(lead):].strip()
    return text.removesuffix("]").strip() if text.endswith("]") and "[" not in text else text


def store_memory(chat: Chat, summary: str, *, covers: str, front: str | None) -> ChatMessage:
    """Write `summary` on message `covers` (SillyTavern's place) with the front it was made at."""
    msg = chat.find(covers)
    if msg is None:
        from .errors import RPContextError

        raise RPContextError(f"no message with id {covers!r} to store the memory on")
    msg.extra[MEMORY_KEY] = summary
    msg.extra[META_KEY] = {"front": front}
    return msg
