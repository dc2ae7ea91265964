"""Fit an assembled prompt into `n_ctx - reserve` tokens, exactly, while keeping llama.cpp's cache warm.

Reductions run from least to most lossy, each only when the whole history would not fit without
it: message batching, role consolidation, progressive stripping (content-only / markers-only /
full bands), example dialogues, then eviction of whole oldest turns in chunks. The choice of
reductions depends on the *whole* history, which only grows, so each switches on once and stays
on; chunk boundaries are fixed from the oldest message, so the evicted prefix only moves when a
whole chunk goes, and the prompt's front stays byte-identical for many turns in between.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field

from .assembly import AssembledPrompt
from .errors import BudgetError
from .flatten import FlatPrompt
from .memory import StoredMemory, choose_memory, memory_text
from .policy import BudgetPolicy
from .segments import SECTION_OF, Section, Segment, SegmentKind, Tier
from .templates.costs import label_text
from .tokens import TextPart, TokenCounter, common_prefix

__all__ = ["BudgetPolicy", "BudgetReport", "FittedPrompt", "fit_prompt"]

class BudgetReport(BaseModel):
    """What the budget manager did and where the tokens went."""

    n_ctx: int
    reserve: int
    budget: int
    tokens: int
    """Exact count of the fitted prompt (the model's tokenizer on the final text)."""
    tokenizer: Literal["exact", "estimate"]
    tokenizer_name: str
    sections: dict[str, int]
    """Tokens per section (system, card, lore, examples, history, tail, structure)."""
    kinds: dict[str, int]
    """Tokens per segment kind."""
    structure_tokens: int
    """Tokens that are not content (template markers, names, separators)."""
    structure_percent: float
    reductions: list[str]
    """Reductions applied, in order: batching, consolidation, stripping, examples, eviction."""
    batched: list[str] = Field(default_factory=list)
    consolidated: list[str] = Field(default_factory=list)
    stripped: dict[str, str] = Field(default_factory=dict)
    """Message id → tier (markers / content)."""
    dropped: list[str] = Field(default_factory=list)
    """Evicted message ids, oldest first."""
    examples_dropped: list[str] = Field(default_factory=list)
    lore: list[dict[str, Any]] = Field(default_factory=list)
    """World-info decisions (entry, status, reason)."""
    reused_prefix: int | None = None
    """Tokens shared with the previous prompt's start (what llama.cpp can reuse); None: no previous."""
    segments: list[dict[str, Any]] = Field(default_factory=list)
    """Every segment in prompt order: id, kind, role, name, tokens, status."""
    estimated_tokens: int = 0
    """What the budget's own arithmetic (template cost rules, cached per-text counts) says the
    prompt costs; within about 1% of `tokens`."""
    window_fill: float = 0.0
    """Prompt tokens / budget: how full the window is (SillyTavern keeps ~0.92)."""
    history_share: float = 0.0
    """Share of the prompt that is chat history (messages, injections, memory)."""
    turns_evicted: int = 0
    """Messages evicted from the front of the history."""
    turns_covered: int = 0
    """Evicted messages the memory shown covers (SillyTavern Summarize's place)."""
    eviction: Literal["chunk", "shift", "message"] | None = None
    """How evicted turns went: a chunk down to the low-water mark, one by one with the backend
    asked to shift its KV cache, or one by one (SillyTavern); None when nothing was evicted."""
    low_water: int | None = None
    """Chunked eviction's low-water mark in tokens (after clamping)."""
    low_water_clamped: bool = False
    """True when the policy's low-water mark was at or below the pinned top and was raised."""
    front: str | None = None
    """Id of the oldest chat message kept."""
    front_index: int | None = None
    """Its index among the chat's visible messages (0: nothing evicted; None: no messages)."""
    memory: dict[str, Any] | None = None
    """The memory shown: {text, message_id (where it is stored), covers (messages)}; None: none."""


@dataclass
class FittedPrompt:
    """The fitted prompt: segments with their final tiers, the flattened text, token ids, report."""

    segments: list[Segment]
    flat: FlatPrompt
    ids: list[int]
    report: BudgetReport
    assembled: AssembledPrompt
    pinned_prefix: int = 0
    """Tokens up to the end of the last pinned segment before the history (for `n_keep`)."""

    @property
    def text(self) -> str:
        return self.flat.text

    @property
    def stop(self) -> list[str]:
        return [*self.flat.stop, *[s for s in self.assembled.stop if s not in self.flat.stop]]


@dataclass(eq=False)
class _Turn:
    """One history unit kept or evicted as a whole: a message, an injection block, or a batch.

    `segs` are the assembled segments, never modified; token costs per tier are precomputed so
    the eviction search is arithmetic, not re-rendering.
    """

    segs: list[Segment]
    role: str
    batched: bool = False
    content: int = 0
    """Tokens of the segments' own text."""
    labels: int = 0
    """Tokens of the `Name: ` labels the renderer writes on the messages' own turns."""
    names: int = 0
    """Tokens of `Name: ` for every named message (a batch or a markers-only band writes them all)."""
    markers: int = 0
    """Tokens of the turn's template markers (its role's sequences)."""
    pinned: bool = False
    body: int | None = None
    """A batch's own text counted joined as `_batch` writes it (separate counts overshoot)."""

    @property
    def message_ids(self) -> list[str]:
        return [s.message_id for s in self.segs if s.message_id]

    def tokens(self, tier: Tier) -> int:
        n = len(self.segs)
        if tier is _FULL:
            return self.full
        if tier is _MARKERS:
            return self.content + self.names + n
        return self.content + n

    @property
    def full(self) -> int:
        if self.batched:
            if self.body is not None:
                return self.body + self.markers
            return self.content + self.names + self.markers + len(self.segs) - 1
        return self.content + self.labels + self.markers


@dataclass
class _Counts:
    """Per-text token counts, cached across turns so a new turn costs what changed."""

    counter: TokenCounter
    plain: dict[str, int] = field(default_factory=dict)
    special: dict[str, int] = field(default_factory=dict)
    parts: dict[str, int] = field(default_factory=dict)
    pieces: dict[str, list[int]] = field(default_factory=dict)
    """Ids of prompt pieces cut at special tokens: the final exact count tokenizes only new ones."""
    memos: dict[tuple[Any, ...], dict[int, tuple[Any, ...]]] = field(default_factory=dict)

    def memo(self, key: tuple[Any, ...]) -> dict[int, tuple[Any, ...]]:
        """Per-segment costs for one template and chat setting (see `_Costs.prepare`)."""
        m = self.memos.get(key)
        if m is None or len(m) > 200_000:
            if len(self.memos) > 16:
                self.memos.clear()
            m = self.memos[key] = {}
        return m

    def count_parts(self, parts: list[TextPart]) -> int:
        """Tokens of rendered parts as the prompt tokenizes them (cached by their text)."""
        key = "\x00".join(f"{int(p.special)}{p.text}" for p in parts)
        n = self.parts.get(key)
        if n is None:
            n = self.parts[key] = len(self.counter.tokenize_parts(parts))
        return n

    def count(self, text: str, special: bool = False) -> int:
        cache = self.special if special else self.plain
        n = cache.get(text)
        if n is None:
            n = self.counter.count(text, special=special)
            if len(cache) > 200_000:
                cache.clear()
            cache[text] = n
        return n


_COUNT_CACHES: dict[int, _Counts] = {}


def _counts_for(counter: TokenCounter) -> _Counts:
    c = _COUNT_CACHES.get(id(counter))
    if c is None or c.counter is not counter:
        c = _Counts(counter)
        _COUNT_CACHES[id(counter)] = c
        if len(_COUNT_CACHES) > 8:
            _COUNT_CACHES.pop(next(iter(_COUNT_CACHES)))
    return c


def fit_prompt(
    assembled: AssembledPrompt,
    counter: TokenCounter,
    *,
    n_ctx: int,
    reserve: int = 256,
    policy: BudgetPolicy | None = None,
    previous_ids: Sequence[int] | None = None,
    add_bos: bool | None = None,
) -> FittedPrompt:
    """Fit `assembled` into `n_ctx - reserve` tokens; raise BudgetError if the pinned part can't fit."""
    policy = policy or BudgetPolicy()
    budget = n_ctx - reserve
    if budget <= 0:
        raise BudgetError(f"reserve {reserve} leaves no room in a {n_ctx}-token window")
    counts = _counts_for(counter)
    cost = _Costs(assembled, counts)

    head, history, tail = _split(assembled.segments)
    head = [s for s in head if s.kind is not SegmentKind.MEMORY]
    examples = [s for s in head if s.kind == SegmentKind.EXAMPLE_DIALOGUE and not s.pinned]
    example_ids = {id(s) for s in examples}
    fixed_tokens = cost.units([s for s in head if id(s) not in example_ids]) + cost.units(tail)
    fixed_tokens += cost.header + cost.bos
    example_tokens = cost.units(examples, inside=True)
    if fixed_tokens > budget:
        raise BudgetError(_overflow_message(budget, fixed_tokens), _section_breakdown(head + tail, cost))

    def fits(total: int) -> bool:
        return total <= budget

    def total_of(turns: list[_Turn]) -> int:
        return sum(t.full for t in turns)

    base = fixed_tokens + (example_tokens if policy.examples != "never" else 0)
    cost.prepare(history)
    full_tokens = _plain_total(history, cost)
    whole = None
    if policy.examples != "never" or not examples:  # "never" is a choice, not a reduction
        whole = _fits_whole(assembled, head, history, tail, counter, budget, base + full_tokens, add_bos)
    if whole is not None:
        final, flat, ids = whole
        return _finish(final, flat, ids, _Plan(), assembled, counter, counts, n_ctx, reserve,
                       budget, base + full_tokens - cost.header_slack, previous_ids)

    reductions: list[str] = []
    batched: list[str] = []
    consolidated: list[str] = []
    content_tokens = sum(cost.texts)
    turns: list[_Turn] | None = None
    # Batching alone is tried only when it could make the history fit (its text alone fits);
    # a long chat goes straight to batching with consolidation, one grouping pass.
    if not fits(base + full_tokens) and policy.batching and assembled.group and (
        not policy.consolidation or fits(base + content_tokens)
    ):
        grouped = _group(history, cost, batching=True, consolidation=False)
        batched = [mid for t in grouped if t.batched for mid in t.message_ids]
        if batched:
            turns, full_tokens = grouped, total_of(grouped)
            reductions.append("batching")
    if not fits(base + full_tokens) and policy.consolidation:
        grouped = _group(history, cost, batching=policy.batching and assembled.group, consolidation=True)
        merged = [mid for t in grouped if t.batched and any(s.role == "system" for s in t.segs)
                  for mid in t.message_ids]
        if merged or (policy.batching and assembled.group and not batched):
            batched = [mid for t in grouped if t.batched and all(s.role != "system" for s in t.segs)
                       for mid in t.message_ids] or batched
            turns, full_tokens = grouped, total_of(grouped)
            if batched and "batching" not in reductions:
                reductions.append("batching")
            if merged:
                consolidated = merged
                reductions.append("consolidation")
    if turns is None:
        turns = _group(history, cost, batching=False, consolidation=False)

    stripping = policy.stripping and not fits(base + full_tokens)
    drop_examples = policy.examples == "never" or (
        policy.examples == "threshold" and not fits(base + full_tokens)
    )
    fixed_now = fixed_tokens if (drop_examples or policy.examples == "gradual") else fixed_tokens + example_tokens
    if fixed_now > budget:  # examples "keep" that cannot fit: the examples go, the rest stays
        fixed_now, drop_examples = fixed_tokens, True

    # Chunk grid from the oldest turn: fixed as the chat grows, so eviction points are stable.
    # A chunk is the budget above the low-water mark: evicting one takes the prompt from the
    # high-water mark (the budget) down to about the low-water mark, and it takes that many new
    # tokens before the next eviction. A low-water mark at or below the pinned top would evict
    # the whole history: it is clamped to the same share of the room the top leaves.
    chunked = policy.eviction == "chunked"
    low_water = int(budget * policy.low_water)
    clamped = chunked and fixed_now >= low_water
    if clamped:
        low_water = fixed_now + int((budget - fixed_now) * policy.low_water)
    chunk_tokens = max(1, budget - low_water)
    chunks = _chunks(turns, chunk_tokens) if chunked else [[t] for t in turns]
    window = max(1, round(1.0 / max(1e-6, 1.0 - policy.low_water))) if chunked else 0

    def tiers_for(kept: list[list[_Turn]]) -> dict[int, Tier]:
        return _tiers(kept, policy.strip_bands, window) if stripping else {}

    def history_tokens(kept: list[list[_Turn]], tiers: dict[int, Tier]) -> int:
        if not tiers:
            return sum(t.full for ch in kept for t in ch)
        return sum(t.tokens(tiers.get(id(t), _FULL)) for ch in kept for t in ch)

    # Evict the fewest whole chunks (oldest first) that make the history fit; with a summary
    # stored, the memory shown after an eviction takes its room too.
    memories = assembled.memories if policy.memory else []
    start = _evict(chunks, budget - fixed_now, stripping, tiers_for, history_tokens)
    if start and memories:
        reserve_mem = cost.units([_memory_segment(memories[-1], policy)])
        start = _evict(chunks, budget - fixed_now - reserve_mem, stripping, tiers_for, history_tokens)
    chunks, start = _floor(chunks, start, turns, budget - fixed_now)
    if start:
        reductions.append("eviction")
    kept_chunks = chunks[start:]
    evicted = [t for ch in chunks[:start] for t in ch if not t.pinned]
    # Pinned turns (injections deeper than the kept history) are never evicted: they stay, at
    # the top of what is kept, as SillyTavern leaves them.
    stranded = [t for ch in chunks[:start] for t in ch if t.pinned]
    if stranded:
        kept_chunks = [stranded, *kept_chunks]
    tiers = tiers_for(kept_chunks)
    history_now = history_tokens(kept_chunks, tiers)
    memory = _choose_memory(assembled, memories, evicted, policy)
    memory_segs = [_memory_segment(memory, policy)] if memory is not None else []
    memory_tokens = cost.units(memory_segs)

    # Examples: gradual push-out fills what history left over, dropping from the last block.
    kept_examples = [] if drop_examples else list(examples)
    if not drop_examples and policy.examples == "gradual":
        room = budget - fixed_tokens - history_now - memory_tokens
        kept_examples = []
        for block in _example_blocks(examples):
            block_cost = cost.units(block, inside=True)
            if block_cost > room:
                break
            kept_examples.extend(block)
            room -= block_cost
    examples_dropped: list[str] = []
    if len(kept_examples) < len(examples):
        kept_set = {id(s) for s in kept_examples}
        examples_dropped = sorted({s.extra.get("example_block", s.id) for s in examples if id(s) not in kept_set})
        reductions.append("examples")

    # Build, then check the exact count; while it is over (the estimate is ~1% off), evict the
    # oldest unpinned turn, so what fits stays.
    while True:
        final = _compose([*head, *memory_segs], tail, kept_examples, kept_chunks, tiers)
        flat = _flatten(assembled, final)
        ids = _token_ids(flat, counter, assembled, add_bos)
        if len(ids) <= budget:
            break
        if any(not t.pinned for ch in kept_chunks for t in ch):
            first = next(i for i, ch in enumerate(kept_chunks) if any(not t.pinned for t in ch))
            gone = next(t for t in kept_chunks[first] if not t.pinned)
            evicted.append(gone)
            keep = [t for t in kept_chunks[first] if t is not gone]
            kept_chunks = [*kept_chunks[:first], *([keep] if keep else []), *kept_chunks[first + 1:]]
            tiers = tiers_for(kept_chunks)
            if "eviction" not in reductions:
                reductions.append("eviction")
            if not memory_segs:
                memory = _choose_memory(assembled, memories, evicted, policy)
                memory_segs = [_memory_segment(memory, policy)] if memory is not None else []
            continue
        if kept_examples:
            kept_examples = []
            examples_dropped = sorted({s.extra.get("example_block", s.id) for s in examples})
            if "examples" not in reductions:
                reductions.append("examples")
            continue
        raise BudgetError(_overflow_message(budget, len(ids)), _section_breakdown(head + tail, cost))

    if tiers:
        reductions.append("stripping")
    canonical = ["batching", "consolidation", "stripping", "examples", "eviction"]
    estimate = (fixed_tokens + cost.units(kept_examples, inside=True) + cost.units(memory_segs)
                + history_tokens(kept_chunks, tiers))
    plan = _Plan(
        reductions=[r for r in canonical if r in reductions], batched=batched,
        consolidated=consolidated, evicted=evicted, examples_dropped=examples_dropped,
        eviction=("chunk" if chunked else "shift" if policy.eviction == "shift" else "message")
        if evicted else None,
        low_water=low_water if chunked else None, low_water_clamped=clamped, memory=memory,
    )
    return _finish(final, flat, ids, plan, assembled, counter, counts, n_ctx, reserve, budget,
                   estimate - cost.header_slack, previous_ids)


@dataclass
class _Plan:
    """What the reduction stages decided, for the report."""

    reductions: list[str] = field(default_factory=list)
    batched: list[str] = field(default_factory=list)
    consolidated: list[str] = field(default_factory=list)
    evicted: list[_Turn] = field(default_factory=list)
    examples_dropped: list[str] = field(default_factory=list)
    eviction: Literal["chunk", "shift", "message"] | None = None
    low_water: int | None = None
    low_water_clamped: bool = False
    memory: StoredMemory | None = None


def _finish(final: list[Segment], flat: FlatPrompt, ids: list[int], plan: _Plan,
            assembled: AssembledPrompt, counter: TokenCounter, counts: _Counts, n_ctx: int,
            reserve: int, budget: int, estimate: int,
            previous_ids: Sequence[int] | None) -> FittedPrompt:
    report = _report(final_segments=final, flat=flat, ids=ids, counter=counter, counts=counts,
                     n_ctx=n_ctx, reserve=reserve, budget=budget, plan=plan, assembled=assembled,
                     previous_ids=previous_ids, estimate=estimate)
    pinned_prefix = _pinned_prefix(flat, final, counts)
    return FittedPrompt(segments=final, flat=flat, ids=ids, report=report,
                        assembled=assembled, pinned_prefix=pinned_prefix)


def _fits_whole(assembled: AssembledPrompt, head: list[Segment], history: list[Segment],
                tail: list[Segment], counter: TokenCounter, budget: int, estimate: int,
                add_bos: bool | None) -> tuple[list[Segment], FlatPrompt, list[int]] | None:
    """The prompt unreduced, when its exact count fits: a prompt that fits is never reduced.

    Tokenized only when the estimate is close enough to the budget for that to matter.
    """
    if estimate > budget * 1.03 + 8:
        return None
    final = [*head, *history, *tail]
    flat = _flatten(assembled, final)
    ids = _token_ids(flat, counter, assembled, add_bos)
    return (final, flat, ids) if len(ids) <= budget else None


def _evict(chunks: list[list[_Turn]], available: int, stripping: bool,
           tiers_for: Any, history_tokens: Any) -> int:
    """How many whole chunks (oldest first) must go for the rest to fit in `available`.

    Stripping only lowers a chunk's cost, so without it the sums are enough; with it, re-tier
    per candidate.
    """
    sizes = [sum(t.full for t in ch) for ch in chunks]
    floors = [sum(t.content + len(t.segs) for t in ch) for ch in chunks]
    start = 0
    rest_full, rest_floor = sum(sizes), sum(floors)
    if rest_full <= available:
        return 0
    while start < len(chunks) and rest_floor > available:
        rest_full -= sizes[start]
        rest_floor -= floors[start]
        start += 1
    if stripping:
        while start < len(chunks) and history_tokens(chunks[start:], tiers_for(chunks[start:])) > available:
            start += 1
    else:
        while start < len(chunks) and rest_full > available:
            rest_full -= sizes[start]
            start += 1
    return start


def _floor(chunks: list[list[_Turn]], start: int, turns: list[_Turn], available: int
           ) -> tuple[list[list[_Turn]], int]:
    """Never worse than SillyTavern: when whole-chunk eviction would lose the newest user
    message, or leave no unpinned turn while one fits, keep the newest turns that fit instead
    (per turn), so the user's message and what fits after the pinned top stay."""
    kept = {id(t) for ch in chunks[start:] for t in ch}
    newest_user = next((t for t in reversed(turns)
                        if any(s.kind is _MESSAGE and s.role == "user" for s in t.segs)), None)
    lost_user = newest_user is not None and id(newest_user) not in kept
    empty = not any(not t.pinned for ch in chunks[start:] for t in ch)
    if not start or not (lost_user or empty):
        return chunks, start
    room = available - sum(t.full for t in turns if t.pinned)
    n = 0
    for t in reversed(turns):
        if t.pinned:
            n += 1
            continue
        if t.full > room:
            break
        room -= t.full
        n += 1
    per_turn = [[t] for t in turns]
    return per_turn, len(turns) - n


def _choose_memory(assembled: AssembledPrompt, memories: list[StoredMemory], evicted: list[_Turn],
                   policy: BudgetPolicy) -> StoredMemory | None:
    if not memories or not evicted or not policy.memory:
        return None
    return choose_memory(memories, _message_index(assembled, evicted))


def _message_index(assembled: AssembledPrompt, evicted: list[_Turn]) -> int:
    """Index (among the chat's visible messages) of the oldest message kept: the front."""
    gone = {mid for t in evicted for mid in t.message_ids}
    i = 0
    for s in assembled.segments:
        if s.kind is _MESSAGE:
            if s.message_id not in gone:
                return i
            i += 1
    return i


def _memory_segment(memory: StoredMemory, policy: BudgetPolicy) -> Segment:
    return Segment.model_construct(
        id="memory", kind=SegmentKind.MEMORY, role="system", name=None,
        text=memory_text(memory.text, policy.memory_template), special=False, pinned=False,
        tier=Tier.FULL, source=f"chat:{memory.message_id}:memory", message_id=None, block=None,
        depth=None, extra={"covers": memory.message_id})


def request_ids(fitted: FittedPrompt, segments: list[Segment], counter: TokenCounter
                ) -> tuple[list[int], list[str]]:
    """Token ids and stop strings of another request built on a fitted prompt's segments."""
    flat = _flatten(fitted.assembled, segments)
    return _token_ids(flat, counter, fitted.assembled, None), fitted.stop


# --------------------------------------------------------------------------------------------
_KIND_VALUE = {k: k.value for k in SegmentKind}  # a dict look-up, not the enum descriptor
_SECTION_VALUE = {k: SECTION_OF.get(k, Section.STRUCTURE).value for k in SegmentKind}
_HISTORY_KINDS = (SegmentKind.CHAT_MESSAGE, SegmentKind.AUTHOR_NOTE, SegmentKind.DEPTH_INJECTION)
_MESSAGE = SegmentKind.CHAT_MESSAGE  # enum attribute lookups are slow in hot loops
_FULL, _MARKERS, _CONTENT = Tier.FULL, Tier.MARKERS, Tier.CONTENT


def _split(segs: list[Segment]) -> tuple[list[Segment], list[Segment], list[Segment]]:
    """Head (story, examples, chat start), history (messages and injections), tail (PHI, header)."""
    first_hist = next(
        (i for i, s in enumerate(segs) if s.kind in _HISTORY_KINDS
         or (s.block or "").startswith("inject:")),
        None,
    )
    tail_start = next(
        (i for i, s in enumerate(segs) if s.kind in (SegmentKind.POST_HISTORY, SegmentKind.GENERATION_HEADER)),
        len(segs),
    )
    if first_hist is None or first_hist > tail_start:
        first_hist = tail_start
    return segs[:first_hist], segs[first_hist:tail_start], segs[tail_start:]


def _group(history: list[Segment], cost: _Costs, *, batching: bool, consolidation: bool) -> list[_Turn]:
    """Group history segments into turns: one per message or injection block, or per batch.

    batching: consecutive character replies share a turn; consolidation: narrator (system)
    messages join the character replies next to them.
    """
    texts, labels, names = cost.texts, cost.labels, cost.names
    if batching:
        history, texts, labels, names = _hoist_injections(history, texts, labels, names)
    turns: list[_Turn] = []
    last: _Turn | None = None
    last_roles: set[str] = set()
    last_msgs = False
    for i, seg in enumerate(history):
        if seg.block is not None and last is not None and last.segs[-1].block == seg.block:
            last.segs.append(seg)
            last.content += texts[i]
            continue
        is_msg = seg.kind is _MESSAGE
        if last is not None and is_msg and last_msgs:
            merge = False
            if seg.role == "assistant":
                merge = (batching and "assistant" in last_roles and last_roles <= {"assistant", "system"}) or (
                    consolidation and last_roles == {"system"})
            elif seg.role == "system":
                merge = consolidation and last_roles <= {"assistant", "system"}
            if merge:
                last.segs.append(seg)
                last.batched = True
                last.content += texts[i]
                last.labels += labels[i]
                last.names += names[i]
                last_roles.add(seg.role or "system")
                if "assistant" in last_roles and last.role != "assistant":
                    last.role = "assistant"
                    last.markers = cost.markers["assistant"]
                continue
        role = seg.role or "system"
        last = _Turn([seg], role, content=texts[i], labels=labels[i], names=names[i],
                     markers=cost.markers.get(role, 0), pinned=seg.pinned)
        turns.append(last)
        last_roles = {role}
        last_msgs = is_msg
    for t in turns:
        if t.batched:
            t.body = cost.counts.count("\n".join(f"{g.name}: {g.text}" if g.name else g.text
                                                 for g in t.segs))
    return turns


def _hoist_injections(history: list[Segment], texts: list[int], labels: list[int], names: list[int]
                      ) -> tuple[list[Segment], list[int], list[int], list[int]]:
    """Move an injection that splits a run of character replies to the start of that run.

    Depth counts messages, so an injection can land between two replies of one round; batched,
    the round would then be cut in two, and rejoined next turn when the injection moves on,
    changing text before the tail. Before the round, it leaves the round whole.
    """
    order = list(range(len(history)))
    i = 0
    out: list[int] = []
    run_start: int | None = None  # index in `out` where the current run of replies starts
    while i < len(order):
        seg = history[i]
        if seg.kind is _MESSAGE and seg.role in ("assistant", "system"):
            if run_start is None:
                run_start = len(out)
            out.append(i)
            i += 1
            continue
        block = seg.block or ""
        if block.startswith("inject:") and run_start is not None:
            j = i
            while j < len(history) and history[j].block == seg.block:
                j += 1
            nxt = history[j] if j < len(history) else None
            if nxt is not None and nxt.kind is _MESSAGE and nxt.role == "assistant":
                out[run_start:run_start] = list(range(i, j))
                run_start += j - i
                i = j
                continue
        run_start = None
        out.append(i)
        i += 1
    if out == order:
        return history, texts, labels, names
    return ([history[k] for k in out], [texts[k] for k in out], [labels[k] for k in out],
            [names[k] for k in out])


def _plain_total(history: list[Segment], cost: _Costs) -> int:
    """The history's full-structure cost, one turn per message or block, without building turns."""
    total = sum(cost.texts) + sum(cost.labels)
    markers = cost.markers
    last_block: str | None = None
    for s in history:
        if s.block is None or s.block != last_block:
            total += markers.get(s.role or "system", 0)
        last_block = s.block
    return total


def _chunks(turns: list[_Turn], chunk_tokens: int) -> list[list[_Turn]]:
    chunks: list[list[_Turn]] = []
    size = 0
    for t in turns:
        if not chunks or size >= chunk_tokens:
            chunks.append([])
            size = 0
        chunks[-1].append(t)
        size += t.full
    return chunks


def _tiers(chunks: list[list[_Turn]], bands: tuple[float, float, float], window: int) -> dict[int, Tier]:
    """Oldest band: content only; middle: markers only; recent: full (pinned turns stay full).

    With chunked eviction the stripped region is the oldest kept chunks, at most `window - 2` of
    them (the chunks that are already complete when an eviction happens), split content/markers
    by the bands' shares in quarter-chunks; newer chunks stay full. Positions count from the
    oldest kept chunk, which only moves when a chunk is evicted, so a turn's tier changes with
    evictions and never in between; a window of two chunks (low_water 0.5) therefore never
    strips. With per-message eviction the bands are shares of the kept turns.
    """
    out: dict[int, Tier] = {}
    if not chunks:
        return out
    stripped_share = bands[0] + bands[1]
    groups: list[tuple[list[_Turn], Tier]]
    if window:
        n_stripped = max(0, min(round(window * stripped_share + 1e-9), window - 2, len(chunks) - 1))
        cells: list[list[_Turn]] = []
        for chunk in chunks[:n_stripped]:
            size = max(1, sum(t.tokens(Tier.FULL) for t in chunk) // 4)
            acc, first = 0, len(cells)
            for t in chunk:
                if len(cells) == first or (acc >= size and len(cells) - first < 4):
                    cells.append([])
                    acc = 0
                cells[-1].append(t)
                acc += t.tokens(Tier.FULL)
        n_content = round(len(cells) * (bands[0] / stripped_share if stripped_share else 0) + 1e-9)
        groups = [(cell, Tier.CONTENT if i < n_content else Tier.MARKERS) for i, cell in enumerate(cells)]
    else:
        n = len(chunks)
        n_content = math.floor(n * bands[0])
        n_markers = math.floor(n * stripped_share) - n_content
        groups = [(cell, Tier.CONTENT if i < n_content else Tier.MARKERS)
                  for i, cell in enumerate(chunks[: n_content + n_markers])]
    for cell, tier in groups:
        for t in cell:
            if not t.pinned and all(s.kind == SegmentKind.CHAT_MESSAGE for s in t.segs):
                out[id(t)] = tier
    return out


def _example_blocks(examples: list[Segment]) -> list[list[Segment]]:
    blocks: list[list[Segment]] = []
    key = None
    for s in examples:
        k = s.extra.get("example_block", s.id.split(":")[1] if ":" in s.id else s.id)
        if k != key:
            blocks.append([])
            key = k
        blocks[-1].append(s)
    return blocks


def _structure(sid: str, text: str, role: str, block: str) -> Segment:
    return Segment.model_construct(id=sid, kind=SegmentKind.STRUCTURE, role=role, name=None, text=text,
                                   special=False, pinned=False, tier=Tier.FULL, source="", message_id=None,
                                   block=block, depth=None, extra={})


def _batch(t: _Turn) -> list[Segment]:
    """A batched turn: one block, each message on its own line as `Name: text`."""
    block = f"batch:{t.segs[0].id}"
    role = t.role
    out: list[Segment] = []
    for k, s in enumerate(t.segs):
        if k:
            out.append(_structure(f"{block}:sep{k}", "\n", role, block))
        if s.name:
            out.append(_structure(f"{s.id}:name", f"{s.name}: ", role, block))
        out.append(s.model_copy(update={"block": block, "role": role, "name": None,
                                        "extra": {**s.extra, "orig_role": s.role or "", "speaker": s.name or ""}}))
    return out


def _compose(head: list[Segment], tail: list[Segment], kept_examples: list[Segment],
             kept_chunks: list[list[_Turn]], tiers: dict[int, Tier]) -> list[Segment]:
    """The final segment list: head, kept history (stripped bands as one system turn each), tail."""
    keep_ex = {id(s) for s in kept_examples}
    out: list[Segment] = [s for s in head if not (
        s.kind == SegmentKind.EXAMPLE_DIALOGUE and not s.pinned and id(s) not in keep_ex)]
    band: list[Segment] = []
    band_tier: Tier | None = None

    def close_band() -> None:
        nonlocal band, band_tier
        if band and band_tier is not None:
            block = f"strip:{band_tier.value}:{band[0].id}"
            for k, s in enumerate(band):
                if k:
                    out.append(_structure(f"{block}:sep{k}", "\n", "system", block))
                out.append(s.model_copy(update={"block": block, "role": "system"}))
        band, band_tier = [], None

    for chunk in kept_chunks:
        for t in chunk:
            tier = tiers.get(id(t), Tier.FULL)
            if tier != Tier.FULL:
                if band_tier is not None and band_tier != tier:
                    close_band()
                band_tier = tier
                for s in t.segs:
                    name = s.name if tier == Tier.MARKERS else None
                    text = f"{name}: {s.text}" if name else s.text
                    band.append(s.model_copy(update={"text": text, "name": None, "tier": tier}))
                continue
            close_band()
            out.extend(_batch(t) if t.batched else t.segs)
    close_band()
    out.extend(tail)
    return out


def _flatten(assembled: AssembledPrompt, segments: list[Segment]) -> FlatPrompt:
    a = assembled
    clone = AssembledPrompt(segments=segments, template=a.template, user=a.user, char=a.char,
                            group=a.group, members=a.members, mode=a.mode, stop=a.stop, lore=a.lore)
    return clone.flatten()


class _Costs:
    """Estimated tokens: content counts cached by text; markers, labels and the header from the
    template's cost rules (`templates.costs`), so the budget charges what the renderer writes."""

    def __init__(self, assembled: AssembledPrompt, counts: _Counts) -> None:
        from .templates.costs import TurnCosts

        self.counts = counts
        speaker = assembled.char if assembled.mode != "impersonate" else assembled.user
        self.rules = TurnCosts(assembled.template, counts.count, counts.count_parts,
                               group=assembled.group, user=assembled.user, char=speaker)
        self.markers: dict[str, int] = self.rules.markers
        self.header = self.rules.header
        self.header_slack = 0  # room held beyond this speaker's header (not in the estimate)
        if assembled.group and assembled.mode == "normal":
            # the room left for history must not depend on who speaks next (a longer name
            # would evict a turn the next speaker brings back, and the cache with it)
            room = max([self.header, *(self.rules.header_for(m) for m in assembled.members)])
            self.header, self.header_slack = room, room - self.header
        counter = counts.counter
        self.bos = 1 if getattr(counter, "add_bos", False) and getattr(counter, "bos_id", None) is not None else 0
        self.texts: list[int] = []
        self.labels: list[int] = []
        self.names: list[int] = []

    def prepare(self, history: list[Segment]) -> None:
        """Count every history segment once: message segments are reused across turns, so their
        costs are kept per segment object (per template and chat) and a turn counts only what
        is new."""
        t = self.rules.template
        named = any("{{" in seq for seq in t.sequences())  # markers that name the speaker
        key = (id(t), t.name, self.rules.group, self.rules.user, self.rules.char if named else None)
        memo = self.counts.memo(key)
        texts: list[int] = []
        names: list[int] = []
        labels: list[int] = []
        for s in history:
            hit = memo.get(id(s))
            if hit is None or hit[0] is not s:
                hit = (s, *self._seg_costs(s))
                if s.kind is _MESSAGE:
                    memo[id(s)] = hit
            texts.append(hit[1])
            names.append(hit[2])
            labels.append(hit[3])
        self.texts, self.names, self.labels = texts, names, labels

    def _seg_costs(self, s: Segment) -> tuple[int, int, int]:
        """(text, name, label) tokens of one history segment. A message's text is priced inside
        its own turn (markers and label around it), so the merges at its edges count as the
        prompt spends them; the sum stays within ~1%."""
        frames = self.rules.frames
        in_turn = s.kind is _MESSAGE and s.text and s.role in frames
        text, name = (0 if in_turn else self.text(s)), self.name(s)
        label = name if name and self.rules.shows(s.role, s.name) else 0
        if in_turn:
            pre, post = frames[s.role]
            shown = label_text(s.name) if label and s.name else ""
            turn = self.counts.count_parts([TextPart(pre, True), TextPart(shown + s.text),
                                            TextPart(post, True)])
            text = max(0, turn - self.rules.alone[s.role] - label)
        return text, name, label

    def text(self, s: Segment) -> int:
        return self.counts.count(s.text, s.special) if s.text else 0

    def name(self, s: Segment) -> int:
        """Tokens of the message's `Name: ` wherever it is written (batches, markers tier),
        measured before its own text (the label's space merges with the first word)."""
        if not s.name or s.kind is not _MESSAGE:
            return 0
        if not s.text:
            return self.rules.label(s.name)
        return max(0, self.counts.count(label_text(s.name) + s.text) - self.text(s))

    def label(self, s: Segment) -> int:
        """Tokens of the label the renderer writes on this segment's own turn (the one rule)."""
        if not s.name or s.kind not in (_MESSAGE, SegmentKind.EXAMPLE_DIALOGUE):
            return 0
        return self.rules.label(s.name) if self.rules.shows(s.role, s.name) else 0

    def units(self, segs: Sequence[Segment], *, inside: bool = False) -> int:
        """Tokens of head or tail segments rendered as turns: text, labels, one set of markers
        per turn (segments sharing a block are one turn; raw text has none). `inside`: the
        first segments continue a block opened before them (examples in the story block)."""
        total = 0
        last_block: str | None = segs[0].block if inside and segs else None
        last_role: str | None = segs[0].role if inside and segs else None
        run: list[TextPart] = []  # text of one turn (or raw run), counted joined as rendered
        for s in segs:
            if s.kind is SegmentKind.GENERATION_HEADER:
                continue
            joins = s.role is None and last_role is None and last_block is None and s.block is None
            if not (joins or (s.block is not None and s.block == last_block and s.role == last_role)):
                total += self._run(run)
                run = []
            run.append(TextPart(s.text, s.special))
            total += self.label(s)
            if s.role is not None and (s.block is None or s.block != last_block or last_role is None):
                total += self.markers.get(s.role, 0)
            last_block, last_role = s.block, s.role
        return total + self._run(run)

    def _run(self, parts: list[TextPart]) -> int:
        parts = [p for p in parts if p.text]
        if len(parts) <= 1:
            return self.counts.count(parts[0].text, parts[0].special) if parts else 0
        return self.counts.count_parts(parts)


def _token_ids(flat: FlatPrompt, counter: TokenCounter, assembled: AssembledPrompt,
               add_bos: bool | None) -> list[int]:
    from .templates.render import token_ids

    return token_ids(flat.parts, counter, bos_token=assembled.template.bos_token,
                     cache=_counts_for(counter).pieces)


def _overflow_message(budget: int, tokens: int) -> str:
    return (
        f"the pinned part of the prompt needs {tokens} tokens but only {budget} fit "
        "(n_ctx - reserve); shorten the card or system prompt, or raise the context size"
    )


def _section_breakdown(segs: list[Segment], cost: _Costs) -> dict[str, int]:
    out: dict[str, int] = {}
    for s in segs:
        sec = SECTION_OF.get(s.kind, Section.STRUCTURE).value
        out[sec] = out.get(sec, 0) + cost.text(s)
    return out


def _pinned_prefix(flat: FlatPrompt, segments: list[Segment], counts: _Counts) -> int:
    """Tokens of the prompt's static front: everything before the first history segment.

    Counted by text through the cache: the front is the same text turn after turn.
    """
    first_hist = next((s.id for s in segments if s.kind in _HISTORY_KINDS), None)
    if first_hist is None:
        return 0
    text: list[str] = []
    for span in flat.spans:
        if span.segment == first_hist:
            break
        text.append(span.part.text)
    return counts.count("".join(text), True)


def _report(*, final_segments: list[Segment], flat: FlatPrompt, ids: list[int], counter: TokenCounter,
            counts: _Counts, n_ctx: int, reserve: int, budget: int, plan: _Plan,
            assembled: AssembledPrompt, previous_ids: Sequence[int] | None,
            estimate: int) -> BudgetReport:
    seg_tokens, kinds, sections, content_tokens = _tally(final_segments, flat, counts)
    total = len(ids)
    structure = max(0, total - content_tokens)
    # Per-span counts differ slightly from one pass over the whole text (BPE merges across span
    # boundaries): book the difference on the largest kind so the parts add up to the exact total.
    drift = total - sum(seg_tokens.values())
    if drift and kinds:
        big_kind = max(kinds, key=lambda k: kinds[k])
        kinds[big_kind] += drift
        big_sec = SECTION_OF.get(SegmentKind(big_kind), Section.STRUCTURE).value
        sections[big_sec] = sections.get(big_sec, 0) + drift
    sections = {k: v for k, v in sections.items() if v}
    stripped = {s.message_id: s.tier.value for s in final_segments
                if s.message_id and s.tier in (Tier.MARKERS, Tier.CONTENT)}
    dropped = [mid for t in plan.evicted for mid in t.message_ids]
    gone = set(dropped)
    seg_rows = _segment_rows(assembled, final_segments, seg_tokens, gone, stripped)
    lore_rows: list[dict[str, Any]] = []
    for d in getattr(assembled.lore, "decisions", []) or []:
        row = d.model_dump(mode="json") if hasattr(d, "model_dump") else dict(getattr(d, "__dict__", {}))
        lore_rows.append(row)
    front = next((s.message_id for s in final_segments if s.kind is _MESSAGE and s.message_id
                  and s.message_id not in gone), None)
    index = {s.message_id: i for i, s in enumerate(
        s for s in assembled.segments if s.kind is _MESSAGE)}
    front_index = index.get(front) if front is not None else (len(index) if index else None)
    memory = None
    covered = 0
    if plan.memory is not None:
        covered = sum(1 for mid in dropped if index.get(mid, 1 << 30) <= plan.memory.index)
        memory = {"text": plan.memory.text, "message_id": plan.memory.message_id,
                  "covers": plan.memory.index + 1}
    history = sum(v for k, v in sections.items() if k in ("history", "memory"))
    # built without re-validating thousands of segment rows we just made
    return BudgetReport.model_construct(
        n_ctx=n_ctx,
        reserve=reserve,
        budget=budget,
        tokens=total,
        tokenizer="exact" if counter.exact else "estimate",
        tokenizer_name=counter.name,
        sections=sections,
        kinds=kinds,
        structure_tokens=structure,
        structure_percent=round(100.0 * structure / total, 2) if total else 0.0,
        reductions=plan.reductions,
        batched=plan.batched,
        consolidated=plan.consolidated,
        stripped=stripped,
        dropped=dropped,
        examples_dropped=plan.examples_dropped,
        lore=lore_rows,
        reused_prefix=common_prefix(previous_ids, ids) if previous_ids is not None else None,
        segments=seg_rows,
        estimated_tokens=estimate,
        window_fill=round(total / budget, 4) if budget else 0.0,
        history_share=round(history / total, 4) if total else 0.0,
        turns_evicted=len(dropped),
        turns_covered=covered,
        eviction=plan.eviction,
        low_water=plan.low_water,
        low_water_clamped=plan.low_water_clamped,
        front=front,
        front_index=front_index,
        memory=memory,
    )


def _tally(final_segments: list[Segment], flat: FlatPrompt, counts: _Counts
           ) -> tuple[dict[str, int], dict[str, int], dict[str, int], int]:
    """Tokens per segment, per kind and per section (span by span), and of content alone."""
    by_id = {s.id: s for s in final_segments}
    seg_tokens: dict[str, int] = {}
    content_tokens = 0
    kinds: dict[str, int] = {}
    sections: dict[str, int] = {}
    not_content = (SegmentKind.STRUCTURE, SegmentKind.GENERATION_HEADER)
    for span in flat.spans:
        text = span.part.text
        if not text:
            continue
        n = counts.count(text, span.part.special)
        seg = by_id.get(span.segment or "")
        key = span.segment or "structure"
        seg_tokens[key] = seg_tokens.get(key, 0) + n
        # Content is the segment's own text; template markers, and plain text the template adds
        # around it (a `Name: ` label), are structure. A context preset's own text counts as
        # the system section.
        is_content = (seg is not None and not span.part.special and seg.kind not in not_content
                      and text in seg.text)
        if is_content:
            content_tokens += n
        kind = seg.kind if seg is not None and (is_content or seg.kind is SegmentKind.STORY_STRING) \
            else SegmentKind.STRUCTURE
        kv = _KIND_VALUE[kind]
        kinds[kv] = kinds.get(kv, 0) + n
        sec = _SECTION_VALUE[kind]
        sections[sec] = sections.get(sec, 0) + n
    return seg_tokens, kinds, sections, content_tokens


def _segment_rows(assembled: AssembledPrompt, final_segments: list[Segment],
                  seg_tokens: dict[str, int], dropped: set[str], stripped: dict[str, str]
                  ) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    kind_value = _KIND_VALUE
    final_ids = {s.id for s in final_segments}
    for s in assembled.segments:
        status = "kept"
        if s.id not in final_ids:
            status = "evicted" if s.message_id in dropped else "dropped"
        elif s.message_id in stripped:
            status = f"stripped:{stripped[s.message_id]}"
        rows.append({"id": s.id, "kind": kind_value[s.kind], "role": s.role, "name": s.name,
                     "tokens": seg_tokens.get(s.id, 0), "status": status})
    return rows
