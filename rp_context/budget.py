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
from .tokens import TokenCounter

__all__ = ["BudgetPolicy", "BudgetReport", "FittedPrompt", "fit_prompt", "common_prefix"]

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


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two token lists."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


@dataclass
class _Turn:
    """One history unit the budget manager keeps or evicts as a whole."""

    segments: list[Segment]
    tokens: int = 0

    @property
    def message_ids(self) -> list[str]:
        return [s.message_id for s in self.segments if s.message_id]


@dataclass
class _Counts:
    """Per-text token counts, cached across turns so a new turn costs what changed."""

    counter: TokenCounter
    cache: dict[tuple[str, bool], int] = field(default_factory=dict)

    def count(self, text: str, special: bool = False) -> int:
        key = (text, special)
        n = self.cache.get(key)
        if n is None:
            n = self.counter.count(text, special=special)
            self.cache[key] = n
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
    segs = [s.model_copy() for s in assembled.segments]
    overhead = _TurnOverhead(assembled, counts)

    head, history, tail = _split(segs)
    examples = [s for s in head if s.kind == SegmentKind.EXAMPLE_DIALOGUE and not s.pinned]
    fixed_tokens = sum(overhead.segment_tokens(s) for s in head if s not in examples)
    fixed_tokens += sum(overhead.segment_tokens(s) for s in tail) + overhead.header
    example_tokens = sum(overhead.segment_tokens(s) for s in examples)

    reductions: list[str] = []
    turns = _turns(history, batching=False, consolidation=False)
    full_tokens = sum(overhead.turn_tokens(t) for t in turns)

    def fits(total: int) -> bool:
        return total <= budget

    base = fixed_tokens + (example_tokens if policy.examples != "never" else 0)
    batched: list[str] = []
    consolidated: list[str] = []
    # When the history's text alone overflows, batching cannot make it fit and consolidation will
    # be tried: group the batches (for the report) without building their segments yet.
    consolidating = policy.consolidation and not fits(
        base + sum(overhead.segment_tokens(s) for s in history))
    batch_turns: list[_Turn] | None = None
    if not fits(base + full_tokens) and policy.batching and assembled.group:
        batch_turns = _turns(history, batching=True, consolidation=False, materialize=not consolidating)
        batched = [mid for t in batch_turns if len(t.message_ids) > 1 for mid in t.message_ids]
        if batched:
            reductions.append("batching")
        if not consolidating:
            turns = batch_turns
            full_tokens = sum(overhead.turn_tokens(t) for t in turns)
    if (consolidating or not fits(base + full_tokens)) and policy.consolidation:
        new_turns = _turns(history, batching=policy.batching and assembled.group, consolidation=True)
        merged = [mid for t in new_turns for mid in t.message_ids
                  if any(s.extra.get("orig_role") == "system" for s in t.segments)]
        if merged:
            turns = new_turns
            consolidated = merged
            reductions.append("consolidation")
        elif batch_turns is not None and consolidating:
            turns = _turns(history, batching=True, consolidation=False)
            full_tokens = sum(overhead.turn_tokens(t) for t in turns)
            full_tokens = sum(overhead.turn_tokens(t) for t in turns)
    for t in turns:
        t.tokens = overhead.turn_tokens(t)

    # Chunk grid from the oldest turn: fixed as the chat grows, so eviction points are stable.
    # A chunk is (1 - low_water) of the budget: evicting one takes the prompt from the high-water
    # mark (the budget) down to about the low-water mark, and it takes that many new tokens
    # before the next eviction. Between evictions the prompt only grows at its end.
    chunk_tokens = max(1, int(budget * (1.0 - policy.low_water)))
    chunked = policy.eviction == "chunked"
    chunks = _chunks(turns, chunk_tokens) if chunked else [[t] for t in turns]
    window_chunks = max(1, round(1.0 / max(1e-6, 1.0 - policy.low_water))) if chunked else 0

    stripping = policy.stripping and not fits(base + full_tokens)
    examples_dropped: list[str] = []
    drop_examples = policy.examples == "never" or (
        policy.examples == "threshold" and not fits(base + full_tokens)
    )

    def history_tokens(kept_chunks: list[list[_Turn]]) -> int:
        if stripping:
            _apply_tiers(kept_chunks, policy.strip_bands, window_chunks)
        return sum(overhead.turn_tokens(t) for ch in kept_chunks for t in ch)

    fixed_now = fixed_tokens + (0 if drop_examples else example_tokens)
    if policy.examples == "gradual":
        fixed_now = fixed_tokens
    if fixed_now > budget and policy.examples not in ("keep",):
        fixed_now = fixed_tokens
        drop_examples = True
    if fixed_tokens > budget:
        raise BudgetError(_overflow_message(budget, fixed_tokens), _section_breakdown(head + tail, overhead))

    # Evict the fewest whole chunks (oldest first) that make the history fit.
    start = 0
    available = budget - fixed_now
    # Chunks whose content alone (every tier's lower bound) overflows cannot be kept: skip past
    # them without re-tiering and re-counting the whole history once per chunk.
    floors = [sum(overhead.floor_tokens(t) for t in ch) for ch in chunks]
    rest = sum(floors)
    if rest > available or history_tokens(chunks) > available:
        while start < len(chunks) and rest > available:
            rest -= floors[start]
            start += 1
        while start < len(chunks) and history_tokens(chunks[start:]) > available:
            start += 1
        reductions.append("eviction")
    if stripping:
        reductions.append("stripping")

    kept_chunks = chunks[start:]
    evicted = [t for ch in chunks[:start] for t in ch]
    history_now = history_tokens(kept_chunks)

    # Examples: gradual push-out fills what history left over, dropping from the last block.
    kept_examples = list(examples)
    if drop_examples:
        kept_examples = []
    elif policy.examples == "gradual":
        room = budget - fixed_tokens - history_now
        kept_examples = []
        for ex_block in _example_blocks(examples):
            cost = sum(overhead.segment_tokens(s) for s in ex_block)
            if cost > room:
                break
            kept_examples.extend(ex_block)
            room -= cost
    if len(kept_examples) < len(examples):
        examples_dropped = sorted({s.extra.get("example_block", s.id) for s in examples if s not in kept_examples})
        reductions.insert(0 if not reductions else len(reductions) - ("eviction" in reductions), "examples")

    # Build, then check the exact count; evict one more chunk while it is over (estimates drift).
    while True:
        final = _compose(assembled, head, tail, kept_examples, kept_chunks)
        flat = final.flatten()
        ids = _token_ids(flat, counter, assembled, add_bos)
        if len(ids) <= budget:
            break
        if kept_chunks:
            evicted.extend(kept_chunks[0])
            kept_chunks = kept_chunks[1:]
            if stripping:
                _apply_tiers(kept_chunks, policy.strip_bands, window_chunks)
            if "eviction" not in reductions:
                reductions.append("eviction")
            continue
        if kept_examples:
            kept_examples = []
            examples_dropped = sorted({s.extra.get("example_block", s.id) for s in examples})
            if "examples" not in reductions:
                reductions.append("examples")
            continue
        raise BudgetError(
            _overflow_message(budget, len(ids)), _section_breakdown(head + tail, overhead)
        )

    canonical = ["batching", "consolidation", "stripping", "examples", "eviction"]
    reductions = [r for r in canonical if r in reductions]
    report = _report(
        final_segments=final.segments,
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
    pinned_prefix = _pinned_prefix(flat, final.segments, counter)
    return FittedPrompt(segments=final.segments, flat=flat, ids=ids, report=report,
                        assembled=assembled, pinned_prefix=pinned_prefix)


# --------------------------------------------------------------------------------------------
def _split(segs: list[Segment]) -> tuple[list[Segment], list[Segment], list[Segment]]:
    """Head (story, examples, chat start), history (messages and injections), tail (PHI, header)."""
    first_hist = next(
        (i for i, s in enumerate(segs) if s.kind in (SegmentKind.CHAT_MESSAGE, SegmentKind.AUTHOR_NOTE,
                                                     SegmentKind.DEPTH_INJECTION)
         or (s.kind == SegmentKind.STRUCTURE and (s.block or "").startswith("inject:"))),
        None,
    )
    tail_start = next(
        (i for i, s in enumerate(segs) if s.kind in (SegmentKind.POST_HISTORY, SegmentKind.GENERATION_HEADER)),
        len(segs),
    )
    if first_hist is None or first_hist > tail_start:
        first_hist = tail_start
    return segs[:first_hist], segs[first_hist:tail_start], segs[tail_start:]


def _turns(history: list[Segment], *, batching: bool, consolidation: bool, materialize: bool = True) -> list[_Turn]:
    """Group history segments into units: one per message, per injection block, or per batch.

    `materialize=False` only groups (the units' message ids are right, their segments are not
    yet relabelled into one block).
    """
    turns: list[_Turn] = []
    for seg in history:
        last = turns[-1] if turns else None
        if seg.block is not None and last is not None and last.segments[-1].block == seg.block:
            last.segments.append(seg)
            continue
        is_msg = seg.kind == SegmentKind.CHAT_MESSAGE
        if last is not None and is_msg and all(s.kind == SegmentKind.CHAT_MESSAGE for s in last.segments):
            roles = {s.role for s in last.segments}
            merge = False
            if seg.role == "assistant":
                merge = (batching and "assistant" in roles and roles <= {"assistant", "system"}) or (
                    consolidation and roles == {"system"}
                )
            elif seg.role == "system":
                merge = consolidation and roles <= {"assistant", "system"}
            if merge:
                last.segments.append(seg)
                continue
        turns.append(_Turn([seg]))
    if not materialize:
        return turns
    # batch / consolidate: give multi-message units a shared block and assistant role
    for t in turns:
        if len(t.segments) > 1 and all(s.kind == SegmentKind.CHAT_MESSAGE for s in t.segments):
            block = f"batch:{t.segments[0].id}"
            role = "assistant" if any(s.role == "assistant" for s in t.segments) else t.segments[0].role
            new: list[Segment] = []
            for k, s in enumerate(t.segments):
                if k:
                    new.append(Segment(id=f"{block}:sep{k}", kind=SegmentKind.STRUCTURE, role=role,
                                       text="\n", block=block))
                update = {"block": block, "role": role, "extra": {**s.extra, "orig_role": s.role or ""}}
                if s.name and s.kind == SegmentKind.CHAT_MESSAGE:
                    new.append(Segment(id=f"{s.id}:name", kind=SegmentKind.STRUCTURE, role=role,
                                       text=f"{s.name}: ", block=block, message_id=None))
                    update["name"] = None
                    update["extra"]["speaker"] = s.name
                new.append(s.model_copy(update=update))  # one copy per segment: this runs per turn
            t.segments = new
    return turns


def _chunks(turns: list[_Turn], chunk_tokens: int) -> list[list[_Turn]]:
    chunks: list[list[_Turn]] = []
    size = 0
    for t in turns:
        if not chunks or size >= chunk_tokens:
            chunks.append([])
            size = 0
        chunks[-1].append(t)
        size += t.tokens
    return chunks


def _apply_tiers(chunks: list[list[_Turn]], bands: tuple[float, float, float], window: int) -> None:
    """Oldest band: content only; middle: markers only; recent: full (pinned segments stay full).

    With chunked eviction the stripped region is the oldest kept chunks, at most `window - 2` of
    them (the chunks that are already complete when an eviction happens), split content/markers
    by the bands' shares in quarter-chunks; newer chunks stay full. Positions count from the
    oldest kept chunk, which only moves when a chunk is evicted, so a turn's tier changes with
    evictions and never in between. A window of two chunks (low_water 0.5) therefore never strips. With per-message eviction the bands are
    shares of the kept turns.
    """
    if not chunks:
        return
    stripped_share = bands[0] + bands[1]
    if window:
        # Only chunks that are complete when an eviction happens may be stripped (positions up to
        # window - 2), so tiers change together with evictions and never in between.
        n_stripped = min(round(window * stripped_share + 1e-9), window - 2, len(chunks) - 1)
        n_stripped = max(0, n_stripped)
        cells: list[list[_Turn]] = []
        for chunk in chunks[:n_stripped]:
            size = max(1, sum(t.tokens for t in chunk) // 4)
            acc, first = 0, len(cells)
            for t in chunk:
                if len(cells) == first or (acc >= size and len(cells) - first < 4):
                    cells.append([])
                    acc = 0
                cells[-1].append(t)
                acc += t.tokens
        n_content = round(len(cells) * (bands[0] / stripped_share if stripped_share else 0) + 1e-9)
        tiers = [Tier.CONTENT if i < n_content else Tier.MARKERS for i in range(len(cells))]
        rest = [t for chunk in chunks[n_stripped:] for t in chunk]
        groups = [*zip(cells, tiers, strict=True), (rest, Tier.FULL)]
    else:
        n = len(chunks)
        n_content = math.floor(n * bands[0])
        n_markers = math.floor(n * stripped_share) - n_content
        groups = [
            (cell, Tier.CONTENT if i < n_content else Tier.MARKERS if i < n_content + n_markers else Tier.FULL)
            for i, cell in enumerate(chunks)
        ]
    for cell, tier in groups:
        for t in cell:
            for s in t.segments:
                if not s.pinned and s.tier != tier:  # pydantic setattr is slow; most tiers stay
                    s.tier = tier


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


@dataclass
class _Composed:
    segments: list[Segment]
    assembled: AssembledPrompt

    def flatten(self) -> FlatPrompt:
        a = self.assembled
        clone = AssembledPrompt(
            segments=self.segments, template=a.template, user=a.user, char=a.char, group=a.group,
            members=a.members, mode=a.mode, stop=a.stop, lore=a.lore,
        )
        return clone.flatten()


def _compose(assembled: AssembledPrompt, head: list[Segment], tail: list[Segment],
             kept_examples: list[Segment], kept_chunks: list[list[_Turn]]) -> _Composed:
    out: list[Segment] = []
    keep_ex = {id(s) for s in kept_examples}
    for s in head:
        if s.kind == SegmentKind.EXAMPLE_DIALOGUE and not s.pinned and id(s) not in keep_ex:
            continue
        out.append(s)
    # Stripped bands render as one system turn each: markers keep `Name:` labels, content none.
    band: list[Segment] = []
    band_tier: Tier | None = None

    def close_band() -> None:
        nonlocal band, band_tier
        if band and band_tier is not None:
            block = f"strip:{band_tier.value}:{band[0].id}"
            for k, s in enumerate(band):
                if k:
                    out.append(Segment(id=f"{block}:sep{k}", kind=SegmentKind.STRUCTURE, role="system",
                                       text="\n", block=block))
                out.append(s.model_copy(update={"block": block, "role": "system"}))
        band, band_tier = [], None

    for chunk in kept_chunks:
        for t in chunk:
            for s in t.segments:
                tier = s.tier if s.kind == SegmentKind.CHAT_MESSAGE or s.tier != Tier.FULL else Tier.FULL
                if tier in (Tier.MARKERS, Tier.CONTENT) and not s.pinned:
                    if band_tier is not None and band_tier != tier:
                        close_band()
                    band_tier = tier
                    if s.kind == SegmentKind.STRUCTURE:
                        continue  # batch labels and separators: the band writes its own
                    name = (s.name or s.extra.get("speaker")) if tier == Tier.MARKERS else None
                    text = f"{name}: {s.text}" if name else s.text
                    band.append(s.model_copy(update={"text": text, "name": None}))
                    continue
                close_band()
                out.append(s)
    close_band()
    out.extend(tail)
    return _Composed(out, assembled)


class _TurnOverhead:
    """Estimated tokens per segment and turn: content counts cached by text, markers per role."""

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

    def segment_tokens(self, s: Segment) -> int:
        return self.counts.count(s.text, s.special) if s.text else 0

    def floor_tokens(self, t: _Turn) -> int:
        """A lower bound of `turn_tokens` at any tier: the segments' own text, without markers."""
        return sum(self.segment_tokens(s) for s in t.segments)

    def turn_tokens(self, t: _Turn) -> int:
        content = 0
        for s in t.segments:
            content += self.segment_tokens(s)
            if s.name and s.tier == Tier.FULL:
                content += self.counts.count(f"{s.name}: ", False)
        head = t.segments[0]
        if head.tier == Tier.CONTENT:
            return content + 1
        return content + self.markers.get(head.role or "system", 0)


def _token_ids(flat: FlatPrompt, counter: TokenCounter, assembled: AssembledPrompt,
               add_bos: bool | None) -> list[int]:
    from .templates.render import token_ids

    ids = token_ids(flat.parts, counter, bos_token=assembled.template.bos_token)
    return ids


def _overflow_message(budget: int, tokens: int) -> str:
    return (
        f"the pinned part of the prompt needs {tokens} tokens but only {budget} fit "
        "(n_ctx - reserve); shorten the card or system prompt, or raise the context size"
    )


def _section_breakdown(segs: list[Segment], overhead: _TurnOverhead) -> dict[str, int]:
    out: dict[str, int] = {}
    for s in segs:
        sec = SECTION_OF.get(s.kind, Section.STRUCTURE).value
        out[sec] = out.get(sec, 0) + overhead.segment_tokens(s)
    return out


def _pinned_prefix(flat: FlatPrompt, segments: list[Segment], counter: TokenCounter) -> int:
    """Tokens of the prompt's static front: everything before the first history segment."""
    first_hist = next((s.id for s in segments if s.kind in (SegmentKind.CHAT_MESSAGE,
                                                            SegmentKind.DEPTH_INJECTION,
                                                            SegmentKind.AUTHOR_NOTE)), None)
    if first_hist is None:
        return 0
    parts = []
    for span in flat.spans:
        if span.segment == first_hist:
            break
        parts.append(span.part)
    return len(counter.tokenize_parts(parts))


def _report(*, final_segments: list[Segment], flat: FlatPrompt, ids: list[int], counter: TokenCounter,
            counts: _Counts, n_ctx: int, reserve: int, budget: int, reductions: list[str],
            batched: list[str], consolidated: list[str], evicted: list[_Turn],
            examples_dropped: list[str], assembled: AssembledPrompt,
            previous_ids: Sequence[int] | None) -> BudgetReport:
    by_id = {s.id: s for s in final_segments}
    seg_tokens: dict[str, int] = {}
    content_tokens = 0
    for span in flat.spans:
        if not span.part.text:
            continue
        n = counts.count(span.part.text, span.part.special)
        seg = by_id.get(span.segment or "")
        # plain text the template adds around a segment (a `Name: ` label) is structure too
        if seg is not None and not span.part.special and seg.kind not in (SegmentKind.STRUCTURE,
                                                                           SegmentKind.GENERATION_HEADER) \
                and span.part.text in seg.text:
            content_tokens += n
        key = span.segment or "structure"
        seg_tokens[key] = seg_tokens.get(key, 0) + n
    total = len(ids)
    # attribute the rounding difference between per-span counts and the exact total to structure
    structure = max(0, total - content_tokens)
    kinds: dict[str, int] = {}
    sections: dict[str, int] = {}
    for sid, n in seg_tokens.items():
        seg = by_id.get(sid)
        kind = seg.kind if seg is not None else SegmentKind.STRUCTURE
        kinds[kind.value] = kinds.get(kind.value, 0) + n
        sec = SECTION_OF.get(kind, Section.STRUCTURE).value
        sections[sec] = sections.get(sec, 0) + n
    # Per-span counts differ slightly from one pass over the whole text (BPE merges across span
    # boundaries): book the difference on the largest kind so the parts add up to the exact total.
    drift = total - sum(seg_tokens.values())
    if drift and kinds:
        big_kind = max(kinds, key=lambda k: kinds[k])
        kinds[big_kind] += drift
        big_sec = SECTION_OF.get(SegmentKind(big_kind), Section.STRUCTURE).value
        sections[big_sec] = sections.get(big_sec, 0) + drift
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
    return BudgetReport(
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
