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

from .assemble import AssembledPrompt
from .errors import BudgetError
from .flatten import FlatPrompt
from .policy import BudgetPolicy
from .segments import SECTION_OF, Section, Segment, SegmentKind, Tier
from .tokens import TokenCounter, common_prefix

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
    """Tokens of the `Name: ` labels the messages carry."""
    markers: int = 0
    """Tokens of the turn's template markers (its role's sequences)."""
    pinned: bool = False

    @property
    def message_ids(self) -> list[str]:
        return [s.message_id for s in self.segs if s.message_id]

    def tokens(self, tier: Tier) -> int:
        n = len(self.segs)
        if tier is _FULL:
            return self.content + self.labels + self.markers + (n - 1 if self.batched else 0)
        if tier is _MARKERS:
            return self.content + self.labels + n
        return self.content + n

    @property
    def full(self) -> int:
        return self.content + self.labels + self.markers + (len(self.segs) - 1 if self.batched else 0)


@dataclass
class _Counts:
    """Per-text token counts, cached across turns so a new turn costs what changed."""

    counter: TokenCounter
    plain: dict[str, int] = field(default_factory=dict)
    special: dict[str, int] = field(default_factory=dict)

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
    examples = [s for s in head if s.kind == SegmentKind.EXAMPLE_DIALOGUE and not s.pinned]
    example_ids = {id(s) for s in examples}
    fixed_tokens = sum(cost.text(s) for s in head if id(s) not in example_ids)
    fixed_tokens += sum(cost.text(s) for s in tail) + cost.header
    fixed_tokens += cost.markers["system"] if any(s.role == "system" for s in head) else 0
    example_tokens = sum(cost.text(s) for s in examples)
    if fixed_tokens > budget:
        raise BudgetError(_overflow_message(budget, fixed_tokens), _section_breakdown(head + tail, cost))

    def fits(total: int) -> bool:
        return total <= budget

    def total_of(turns: list[_Turn]) -> int:
        return sum(t.full for t in turns)

    base = fixed_tokens + (example_tokens if policy.examples != "never" else 0)
    reductions: list[str] = []
    batched: list[str] = []
    consolidated: list[str] = []
    cost.prepare(history)
    full_tokens = _plain_total(history, cost)
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

    # Chunk grid from the oldest turn: fixed as the chat grows, so eviction points are stable.
    # A chunk is (1 - low_water) of the budget: evicting one takes the prompt from the high-water
    # mark (the budget) down to about the low-water mark, and it takes that many new tokens
    # before the next eviction. Between evictions the prompt only grows at its end.
    chunked = policy.eviction == "chunked"
    chunk_tokens = max(1, int(budget * (1.0 - policy.low_water)))
    chunks = _chunks(turns, chunk_tokens) if chunked else [[t] for t in turns]
    window = max(1, round(1.0 / max(1e-6, 1.0 - policy.low_water))) if chunked else 0
    stripping = policy.stripping and not fits(base + full_tokens)
    drop_examples = policy.examples == "never" or (
        policy.examples == "threshold" and not fits(base + full_tokens)
    )
    fixed_now = fixed_tokens if (drop_examples or policy.examples == "gradual") else fixed_tokens + example_tokens
    if fixed_now > budget:  # examples "keep" that cannot fit: the examples go, the rest stays
        fixed_now, drop_examples = fixed_tokens, True

    def tiers_for(kept: list[list[_Turn]]) -> dict[int, Tier]:
        return _tiers(kept, policy.strip_bands, window) if stripping else {}

    def history_tokens(kept: list[list[_Turn]], tiers: dict[int, Tier]) -> int:
        if not tiers:
            return sum(t.full for ch in kept for t in ch)
        return sum(t.tokens(tiers.get(id(t), _FULL)) for ch in kept for t in ch)

    # Evict the fewest whole chunks (oldest first) that make the history fit. Stripping only
    # lowers a chunk's cost, so without it the sums are enough; with it, re-tier per candidate.
    available = budget - fixed_now
    sizes = [sum(t.full for t in ch) for ch in chunks]
    floors = [sum(t.content + len(t.segs) for t in ch) for ch in chunks]
    start = 0
    rest_full, rest_floor = sum(sizes), sum(floors)
    if rest_full > available:
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

    # Examples: gradual push-out fills what history left over, dropping from the last block.
    kept_examples = [] if drop_examples else list(examples)
    if not drop_examples and policy.examples == "gradual":
        room = budget - fixed_tokens - history_now
        kept_examples = []
        for block in _example_blocks(examples):
            block_cost = sum(cost.text(s) for s in block)
            if block_cost > room:
                break
            kept_examples.extend(block)
            room -= block_cost
    examples_dropped: list[str] = []
    if len(kept_examples) < len(examples):
        kept_set = {id(s) for s in kept_examples}
        examples_dropped = sorted({s.extra.get("example_block", s.id) for s in examples if id(s) not in kept_set})
        reductions.append("examples")

    # Build, then check the exact count; evict one more chunk while it is over (estimates drift).
    while True:
        final = _compose(head, tail, kept_examples, kept_chunks, tiers)
        flat = _flatten(assembled, final)
        ids = _token_ids(flat, counter, assembled, add_bos)
        if len(ids) <= budget:
            break
        if any(not t.pinned for ch in kept_chunks for t in ch):
            first = next(i for i, ch in enumerate(kept_chunks) if any(not t.pinned for t in ch))
            evicted.extend(t for t in kept_chunks[first] if not t.pinned)
            keep = [t for t in kept_chunks[first] if t.pinned]
            kept_chunks = [*kept_chunks[:first], *([keep] if keep else []), *kept_chunks[first + 1:]]
            tiers = tiers_for(kept_chunks)
            if "eviction" not in reductions:
                reductions.append("eviction")
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
    reductions = [r for r in canonical if r in reductions]
    report = _report(
        final_segments=final,
        flat=flat,
        ids=ids,
        counter=counter,
        counts=counts,
        n_ctx=n_ctx,
        reserve=reserve,
        budget=budget,
        reductions=reductions,
        batched=batched,
        consolidated=consolidated,
        evicted=evicted,
        examples_dropped=examples_dropped,
        assembled=assembled,
        previous_ids=previous_ids,
    )
    pinned_prefix = _pinned_prefix(flat, final, counts)
    return FittedPrompt(segments=final, flat=flat, ids=ids, report=report,
                        assembled=assembled, pinned_prefix=pinned_prefix)


# --------------------------------------------------------------------------------------------
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
    texts, labels = cost.texts, cost.labels
    if batching:
        history, texts, labels = _hoist_injections(history, texts, labels)
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
                last_roles.add(seg.role or "system")
                if "assistant" in last_roles and last.role != "assistant":
                    last.role = "assistant"
                    last.markers = cost.markers["assistant"]
                continue
        role = seg.role or "system"
        last = _Turn([seg], role, content=texts[i], labels=labels[i],
                     markers=cost.markers.get(role, 0), pinned=seg.pinned)
        turns.append(last)
        last_roles = {role}
        last_msgs = is_msg
    return turns


def _hoist_injections(history: list[Segment], texts: list[int], labels: list[int]
                      ) -> tuple[list[Segment], list[int], list[int]]:
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
        return history, texts, labels
    return [history[k] for k in out], [texts[k] for k in out], [labels[k] for k in out]


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
    """Estimated tokens: content counts cached by text, markers per role, `Name: ` labels."""

    def __init__(self, assembled: AssembledPrompt, counts: _Counts) -> None:
        self.counts = counts
        t = assembled.template
        self.markers: dict[str, int] = {}
        for role, (pre, suf) in {
            "user": (t.input_sequence, t.input_suffix),
            "assistant": (t.output_sequence, t.output_suffix),
            "system": (t.system_sequence, t.system_suffix),
        }.items():
            text = pre + ("\n" if t.wrap else "") + suf + ("\n" if t.wrap and not suf else "")
            self.markers[role] = counts.count(text, True) + (counts.count(t.block_prefix, True) if t.block_prefix else 0)
        header = t.last_output_sequence or t.output_sequence
        self.header = counts.count(header + " " + assembled.char + ":", True)
        self._labels: dict[str, int] = {}
        self.user = assembled.user
        self.names = t.names_behavior
        self.texts: list[int] = []
        self.labels: list[int] = []

    def prepare(self, history: list[Segment]) -> None:
        """Count every history segment once (cached by text across turns)."""
        self.texts = [self.text(s) for s in history]
        self.labels = [self.label(s) for s in history]

    def text(self, s: Segment) -> int:
        return self.counts.count(s.text, s.special) if s.text else 0

    def label(self, s: Segment) -> int:
        if not s.name or s.kind != SegmentKind.CHAT_MESSAGE:
            return 0
        if s.role == "user" and s.name == self.user and self.names != "always":
            return 0  # names "force" leaves the user's own messages unlabelled
        n = self._labels.get(s.name)
        if n is None:
            n = self._labels[s.name] = self.counts.count(f"{s.name}: ", False)
        return n


def _token_ids(flat: FlatPrompt, counter: TokenCounter, assembled: AssembledPrompt,
               add_bos: bool | None) -> list[int]:
    from .templates.render import token_ids

    return token_ids(flat.parts, counter, bos_token=assembled.template.bos_token)


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
            counts: _Counts, n_ctx: int, reserve: int, budget: int, reductions: list[str],
            batched: list[str], consolidated: list[str], evicted: list[_Turn],
            examples_dropped: list[str], assembled: AssembledPrompt,
            previous_ids: Sequence[int] | None) -> BudgetReport:
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
        kinds[kind.value] = kinds.get(kind.value, 0) + n
        sec = SECTION_OF.get(kind, Section.STRUCTURE).value
        sections[sec] = sections.get(sec, 0) + n
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
    dropped = [mid for t in evicted for mid in t.message_ids]
    dropped_set = set(dropped)
    seg_rows: list[dict[str, Any]] = []
    final_ids = {s.id for s in final_segments}
    for s in assembled.segments:
        status = "kept"
        if s.id not in final_ids:
            status = "evicted" if s.message_id in dropped_set else "dropped"
        elif s.message_id in stripped:
            status = f"stripped:{stripped[s.message_id]}"
        seg_rows.append({"id": s.id, "kind": s.kind.value, "role": s.role, "name": s.name,
                         "tokens": seg_tokens.get(s.id, 0), "status": status})
    lore_rows: list[dict[str, Any]] = []
    for d in getattr(assembled.lore, "decisions", []) or []:
        row = d.model_dump(mode="json") if hasattr(d, "model_dump") else dict(getattr(d, "__dict__", {}))
        lore_rows.append(row)
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
        reductions=reductions,
        batched=batched,
        consolidated=consolidated,
        stripped=stripped,
        dropped=dropped,
        examples_dropped=examples_dropped,
        lore=lore_rows,
        reused_prefix=common_prefix(previous_ids, ids) if previous_ids is not None else None,
        segments=seg_rows,
    )
