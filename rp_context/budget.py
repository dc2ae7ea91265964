"""Fit an assembled prompt into `n_ctx - reserve` tokens, exactly, while keeping llama.cpp's cache warm.

Reductions run from least to most lossy, each only when the whole history would not fit without
it: message batching, role consolidation, progressive stripping (content-only / markers-only /
full bands), example dialogues, then eviction of whole oldest turns in chunks. The choice of
reductions depends on the *whole* history, which only grows, so each switches on once and stays
on; chunk boundaries are fixed from the oldest message, so the evicted prefix only moves when a
whole chunk goes, and the prompt's front stays byte-identical for many turns in between.

`fit_prompt` runs in stages over typed intermediates: plan (`_Layout`: head, the history that
can matter, tail and their fixed costs), reduce (`_Reduction`: grouping, eviction, stripping,
examples, memory), compose and count (the exact ids, evicting more while over), report
(`_Outcome` → `BudgetReport`). Without chunking, the plan walks the history from the newest
message and stops well past what fits, so a turn costs what the window holds, not the chat.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, Literal

from pydantic import BaseModel, Field, PrivateAttr

from .assembly import AssembledPrompt
from .errors import BudgetError
from .flatten import FlatMemo, FlatPrompt, Span
from .memory import StoredMemory, choose_memory, memory_text
from .policy import BudgetPolicy
from .reuse import identical_prefix, same_objects
from .segments import SECTION_OF, Section, Segment, SegmentKind, Tier
from .templates.costs import TurnCosts, label_text
from .tokens import CountCache, TextPart, TokenCounter, common_prefix

__all__ = ["BudgetCache", "BudgetPolicy", "BudgetReport", "FittedPrompt", "fit_prompt", "span_sections"]

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
    """Reductions applied, in order: batching, consolidation, stripping, examples, eviction.
    Batching and consolidation are judged on the history the budget looked at: in a long chat,
    the newest turns that can fit (everything older is evicted whatever the grouping)."""
    batched: list[str] = Field(default_factory=list)
    """Ids of messages in the prompt that share a batched turn with other replies."""
    consolidated: list[str] = Field(default_factory=list)
    """Ids of messages in the prompt whose turn merged narrator (system) messages."""
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

    _deferred: Callable[[], dict[str, Any]] | None = PrivateAttr(default=None)
    """Builds the tallies (`sections` … `segments`) on first read: a long chat has a row per
    segment and a count per span, which a turn that only sends the prompt never reads."""

    def __getattr__(self, name: str) -> Any:
        if name in _DEFERRED and self._deferred is not None:
            return self._ready().__dict__[name]
        return super().__getattr__(name)  # type: ignore[misc]

    def _ready(self) -> BudgetReport:
        """Fill in the deferred fields if they are still to be built (before anything reads
        the fields whole)."""
        build = self.__pydantic_private__.get("_deferred") if self.__pydantic_private__ else None
        if build is not None:  # in field order, as the dumps write them
            fields = {**self.__dict__, **build()}
            self.__dict__.clear()
            self.__dict__.update({k: fields[k] for k in type(self).model_fields if k in fields})
            self._deferred = None
        return self

    def model_dump(self, **kwargs: Any) -> dict[str, Any]:
        return super(BudgetReport, self._ready()).model_dump(**kwargs)

    def model_dump_json(self, **kwargs: Any) -> str:
        return super(BudgetReport, self._ready()).model_dump_json(**kwargs)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, BudgetReport):
            other._ready()
        return super(BudgetReport, self._ready()).__eq__(other)

    def __iter__(self) -> Any:
        return super(BudgetReport, self._ready()).__iter__()

    def __repr_args__(self) -> Any:
        return super(BudgetReport, self._ready()).__repr_args__()

    def __copy__(self) -> BudgetReport:
        return super(BudgetReport, self._ready()).__copy__()

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> BudgetReport:
        return super(BudgetReport, self._ready()).__deepcopy__(memo)

    def __getstate__(self) -> dict[Any, Any]:
        return super(BudgetReport, self._ready()).__getstate__()

    @classmethod
    def _lazy(cls, deferred: Callable[[], dict[str, Any]], **fields: Any) -> BudgetReport:
        """A report whose `_DEFERRED` fields `deferred()` builds when one is first read."""
        report = cls.model_construct(**dict.fromkeys(_DEFERRED), **fields)
        for name in _DEFERRED:
            del report.__dict__[name]
        report._deferred = deferred
        return report


_DEFERRED = ("sections", "kinds", "structure_tokens", "structure_percent", "history_share", "segments",
             "dropped")


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


@dataclass(eq=False, slots=True)
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
    narrated: bool = False
    """A batch that holds narrator (system) messages (consolidation)."""
    ids: list[str] | None = None
    """Its message ids, kept once grouped (`message_ids`)."""
    alone: list[_Turn] | None = None
    _full: int = -1

    @property
    def message_ids(self) -> list[str]:
        if self.ids is not None:
            return self.ids
        return list(filter(None, map(_MESSAGE_ID, self.segs)))  # in C: `older` holds most of a long chat

    def chunk(self) -> list[_Turn]:
        """The turn as a chunk of its own (kept with it: a turn is grouped once per round)."""
        if self.alone is None:
            self.alone = [self]
        return self.alone

    def tokens(self, tier: Tier) -> int:
        n = len(self.segs)
        if tier is _FULL:
            return self.full
        if tier is _MARKERS:
            return self.content + self.names + n
        return self.content + n

    @property
    def full(self) -> int:
        """Tokens of the turn written whole (kept once asked: a turn does not change after it is
        grouped)."""
        if self._full < 0:
            self._full = self._full_cost()
        return self._full

    def _full_cost(self) -> int:
        if self.batched:
            if self.body is not None:
                return self.body + self.markers
            return self.content + self.names + self.markers + len(self.segs) - 1
        return self.content + self.labels + self.markers


class _Counts:
    """The budget's counts for one counter: per-text counts from the counter's own table
    (`CountCache`, shared by everything that counts with it) and per-segment costs, kept by
    whoever holds the `BudgetCache` so a new turn prices only new segments."""

    def __init__(self, counter: TokenCounter) -> None:
        self.counter = counter
        held = getattr(counter, "counts", None)
        self.text = held if isinstance(held, CountCache) else CountCache(counter)
        self.count = self.text.count
        self.count_parts = self.text.count_parts
        self.pieces = self.text.pieces
        self.memos: dict[tuple[Any, ...], dict[int, tuple[Any, ...]]] = {}
        self.flat = FlatMemo()
        self.batches: dict[int, tuple[list[Segment], str, list[Segment]]] = {}
        self.bodies: dict[int, tuple[list[Segment], int]] = {}
        self.blocks: dict[int, Any] = {}
        """A rendered turn's token ids by its parts list (`tokenize_blocks_cached`)."""
        self._rules: dict[tuple[Any, ...], tuple[TurnCosts, int, int]] = {}

    def rules(self, assembled: AssembledPrompt) -> tuple[TurnCosts, int, int]:
        """The template's cost rules for this chat, the header room and the part of it beyond
        this speaker's own header; measured by rendering, so kept per template (by value) and
        chat setting."""
        a = assembled
        speaker = a.char if a.mode != "impersonate" else a.user
        shared = a.group and a.mode == "normal"
        key = (a.template.model_dump_json(), a.group, a.user, speaker,
               tuple(a.members) if shared else ())
        hit = self._rules.get(key)
        if hit is None:
            if len(self._rules) > 64:
                self._rules.clear()
            hit = self._rules[key] = _measure_rules(a, speaker, self.count, self.count_parts)
        return hit

    def body(self, segs: list[Segment]) -> int:
        """Tokens of a batch's text as `_batch` writes it, joined (separate counts overshoot);
        kept by its first segment while its segments are the same objects."""
        hit = self.bodies.get(id(segs[0]))
        if hit is not None and same_objects(hit[0], segs):
            return hit[1]
        if len(self.bodies) > 50_000:
            self.bodies.clear()
        n = self.count("\n".join(f"{g.name}: {g.text}" if g.name else g.text for g in segs))
        self.bodies[id(segs[0])] = (list(segs), n)
        return n

    def memo(self, key: tuple[Any, ...]) -> _Priced:
        """What is priced for one template and chat setting (see `_Priced`)."""
        m = self.memos.get(key)
        if m is None or len(m.segs) > 200_000:
            if len(self.memos) > 16:
                self.memos.clear()
            m = self.memos[key] = _Priced()
        return m


class _Priced:
    """Kept across turns for one template and chat setting: each history segment's costs (by
    the segment object), the history priced in order with running sums (`_History`), and the
    turns each round of the chat grouped into (`_group`)."""

    def __init__(self) -> None:
        self.segs: dict[int, tuple[Any, ...]] = {}
        self.history = _History()


class _History:
    """The history's costs from segment `lo` on, aligned with it, with running sums. A chat
    grows at its end, so a turn prices only the segments after the first one that changed
    (compared by identity, in C), and back from the newest only as far as a window can reach;
    the plan finds its window by bisection instead of a walk."""

    def __init__(self) -> None:
        self.segs: list[Segment] = []
        self.lo = -1
        """The first priced segment (-1: nothing priced yet)."""
        self.texts: list[int] = []
        self.names: list[int] = []
        self.labels: list[int] = []
        self.marks: list[int] = []
        """A segment's role markers when it opens a turn (one per message or block), else 0."""
        self.content: list[int] = [0]
        """content[k]: tokens of the unpinned text of segments lo .. lo+k-1."""
        self.pinned: list[int] = [0]
        self.messages: list[int] = [0]
        """messages[k]: chat messages among segments lo .. lo+k-1."""
        self.starts: list[int] = []
        """Where the user messages that open a turn in every grouping are (from `lo` on)."""
        self._front: tuple[int, int, bool] = (-1, 0, False)
        self.rounds: dict[tuple[bool, bool], dict[int, tuple[int, list[_Turn]]]] = {}
        """Per grouping (batching, consolidation): a round's start → its end and its turns, for
        rounds of segments that have not changed since (`_group`)."""

    def update(self, history: list[Segment], cost: _Costs) -> None:
        """Take the history now: price what changed or came at its end since the last turn."""
        keep = identical_prefix(history, self.segs)
        self._forget_rounds(keep)
        self.segs = history
        if self.lo < 0 or keep < self.lo:  # first turn, or an edit before what is priced
            self._reset(history)
            return
        k = keep - self.lo
        for column in (self.texts, self.names, self.labels, self.marks):
            del column[k:]
        for column in (self.content, self.pinned, self.messages):
            del column[k + 1:]
        del self.starts[bisect_left(self.starts, keep):]
        self._append(self._priced(history, keep, len(history), cost))

    def _reset(self, history: list[Segment]) -> None:
        self.lo = len(history)
        self.texts, self.names, self.labels, self.marks = [], [], [], []
        self.content, self.pinned, self.messages, self.starts = [0], [0], [0], []

    def _priced(self, history: list[Segment], a: int, b: int, cost: _Costs) -> list[tuple[Any, ...]]:
        """(text, name, label, marks, pinned, message, starts a turn) of segments a .. b-1."""
        out: list[tuple[Any, ...]] = []
        last_block = history[a - 1].block if a else None
        markers = cost.markers
        for i in range(a, b):
            s = history[i]
            block = s.block
            mark = markers.get(s.role or "system", 0) if block is None or block != last_block else 0
            out.append((*cost.seg(s), mark, s.pinned, s.kind is _MESSAGE, _starts_turn(s)))
            last_block = block
        return out

    def _append(self, rows: list[tuple[Any, ...]]) -> None:
        at = self.lo + len(self.texts)
        for k, (text, name, label, mark, pinned, message, start) in enumerate(rows):
            self.texts.append(text)
            self.names.append(name)
            self.labels.append(label)
            self.marks.append(mark)
            self.content.append(self.content[-1] + (0 if pinned else text))
            self.pinned.append(self.pinned[-1] + pinned)
            self.messages.append(self.messages[-1] + message)
            if start:
                self.starts.append(at + k)

    def _extend_back(self, cost: _Costs, to: int | None = None, need: float = 0) -> None:
        """Price further back: to segment `to`, or about as far as `need` more tokens of text
        take at the priced segments' mean (and a quarter more, at least 64 segments)."""
        history, lo, n = self.segs, self.lo, len(self.texts)
        mean = self.content[-1] / n if n and self.content[-1] else 64.0
        more = max(64, int(max(0.0, need - self.content[-1]) / mean * 1.25) + 64)
        new_lo = to if to is not None else max(0, lo - more)
        pinned = [self.pinned[k + 1] - self.pinned[k] for k in range(n)]
        messages = [self.messages[k + 1] - self.messages[k] for k in range(n)]
        kept = list(zip(self.texts, self.names, self.labels, self.marks, pinned, messages,
                        [False] * n, strict=True))
        starts = self.starts
        self._reset(history)
        self.lo = new_lo
        self._append(self._priced(history, new_lo, lo, cost))
        self._append(kept)
        self.starts += starts

    def window_start(self, cost: _Costs, budget: int, policy: BudgetPolicy) -> int:
        """Where the history the reductions must see starts: 0, or a user message (which starts
        a turn in every grouping) after which unpinned text alone is well over the budget, so
        every turn before it is evicted whatever the reductions do. Chunked eviction fixes its
        grid from the oldest turn and sees everything; older pinned turns would stay, so they do
        too. Whatever is not priced yet and may matter is priced first."""
        if policy.eviction == "chunked":
            return self._all(cost)
        need = budget * 1.25 + 64  # the content alone: every reduction's cost lies above ~0.9x of it
        while True:
            total = self.content[-1]
            if total > need:
                i = self.lo + bisect_left(self.content, total - need) - 1  # the newest i with more
                k = bisect_right(self.starts, i) - 1  # than `need` from it, back to a turn start
                if k >= 0:
                    i = self.starts[k]
                    pinned = self.front[1] or self.pinned[i - self.lo] > 0
                    return self._all(cost) if pinned else i
            if self.lo == 0:
                return 0
            self._extend_back(cost, need=need)

    def _all(self, cost: _Costs) -> int:
        """Price the whole history (the plan sees it all): window start 0."""
        if self.lo > 0:
            self._extend_back(cost, 0)
        return 0

    @property
    def front(self) -> tuple[int, bool]:
        """Chat messages before `lo`, and whether a segment there is pinned (read in C, once
        per `lo`)."""
        if self._front[0] != self.lo:
            older = self.segs[:self.lo]
            self._front = (self.lo, list(map(_KIND, older)).count(_MESSAGE), any(map(_PINNED, older)))
        return self._front[1], self._front[2]

    def messages_before(self, i: int) -> int:
        return self.front[0] + self.messages[i - self.lo]

    def _forget_rounds(self, keep: int) -> None:
        """Forget the rounds that end after the first `keep` segments (they changed or grew)."""
        k = bisect_left(self.starts, keep) - 1  # the round `keep` falls in starts at starts[k] (or 0)
        gone = [0, *self.starts] if k < 0 else self.starts[k:]
        for memo in self.rounds.values():
            for a in gone:
                memo.pop(a, None)
            if len(memo) > 50_000:
                memo.clear()


def _measure_rules(a: AssembledPrompt, speaker: str, count: Any, count_parts: Any
                   ) -> tuple[TurnCosts, int, int]:
    rules = TurnCosts(a.template, count, count_parts, group=a.group, user=a.user, char=speaker)
    header, slack = rules.header, 0  # slack: room held beyond this speaker's header
    if a.group and a.mode == "normal":
        # the room left for history must not depend on who speaks next (a longer name would
        # evict a turn the next speaker brings back, and the cache with it)
        room = max([header, *(rules.header_for(m) for m in a.members)])
        header, slack = room, room - header
    return rules, header, slack


class BudgetCache:
    """What the budget keeps across turns: whoever builds prompts turn after turn (a session, a
    benchmark) holds one and passes it to `fit_prompt`/`build_prompt`, so a new turn prices only
    its new segments, groups only its changed rounds and renders only its new turns (`_Priced`,
    `FlatMemo`). Without one, everything is priced again from the counter's own per-text counts
    (`counter.counts`, a dict look-up each). Bound to the first counter it meets; it starts over
    when given another."""

    def __init__(self) -> None:
        self._counts: _Counts | None = None

    def counts(self, counter: TokenCounter) -> _Counts:
        """The per-text counts for `counter` (a new, empty set for a different counter)."""
        if self._counts is None or self._counts.counter is not counter:
            self._counts = _Counts(counter)
        return self._counts


def fit_prompt(
    assembled: AssembledPrompt,
    counter: TokenCounter,
    *,
    n_ctx: int,
    reserve: int = 256,
    policy: BudgetPolicy | None = None,
    previous_ids: Sequence[int] | None = None,
    add_bos: bool | None = None,
    cache: BudgetCache | None = None,
) -> FittedPrompt:
    """Fit `assembled` into `n_ctx - reserve` tokens; raise BudgetError if the pinned part can't fit.

    Stages: plan (split, fixed costs, the part of the history that can matter), reduce (group,
    evict, strip, examples, memory), compose and count (exact count, evicting more while over),
    report. `cache` keeps token counts across turns (see `BudgetCache`)."""
    policy = policy or BudgetPolicy()
    budget = n_ctx - reserve
    if budget <= 0:
        raise BudgetError(f"reserve {reserve} leaves no room in a {n_ctx}-token window")
    counts = (cache or BudgetCache()).counts(counter)
    plan = _plan(assembled, counts, policy, budget)
    whole = _fits_whole(plan, policy, counter, add_bos)
    if whole is not None:
        final, flat, ids = whole
        return _finish(final, flat, ids, _Outcome(), plan, counts, n_ctx, reserve,
                       plan.base + plan.full_tokens - plan.cost.header_slack, previous_ids)
    red = _reduce(plan, policy)
    final, flat, ids = _count(plan, red, policy, counter, add_bos)
    return _finish(final, flat, ids, red.outcome(policy, plan.older), plan, counts, n_ctx, reserve,
                   red.estimate(plan) - plan.cost.header_slack, previous_ids)


# -- plan ------------------------------------------------------------------------------------


@dataclass
class _Layout:
    """The plan: the prompt split into pinned head, history and tail, their fixed costs, and the
    part of the history the reductions need to see (older turns are known to be evicted)."""

    assembled: AssembledPrompt
    cost: _Costs
    budget: int
    head: list[Segment]
    history: list[Segment]
    """The newest history segments, from a turn boundary: everything that can fit."""
    tail: list[Segment]
    examples: list[Segment]
    fixed_tokens: int
    example_tokens: int
    base: int
    full_tokens: int
    """`history`'s full-structure cost, one turn per message or block."""
    older: _Turn | None = None
    """The history before `history` as one unit: more than the window holds comes after it."""
    older_messages: int = 0
    older_at: int = 0
    """Index of `older`'s first segment in the assembled segments."""
    start: int = 0
    """Where `history` starts in the whole history (`_History`)."""


def _plan(assembled: AssembledPrompt, counts: _Counts, policy: BudgetPolicy, budget: int) -> _Layout:
    """Split the prompt, price the pinned part, and find the part of the history that matters."""
    cost = _Costs(assembled, counts)
    head, history, tail = _split(assembled.segments)
    older_at = len(head)  # where the history starts in the assembled segments
    head = [s for s in head if s.kind is not SegmentKind.MEMORY]
    examples = [s for s in head if s.kind == SegmentKind.EXAMPLE_DIALOGUE and not s.pinned]
    example_ids = {id(s) for s in examples}
    fixed_tokens = cost.units([s for s in head if id(s) not in example_ids]) + cost.units(tail)
    fixed_tokens += cost.header + cost.bos
    example_tokens = cost.units(examples, inside=True)
    if fixed_tokens > budget:
        raise BudgetError(_overflow_message(budget, fixed_tokens), _section_breakdown(head + tail, cost))
    base = fixed_tokens + (example_tokens if policy.examples != "never" else 0)
    table = cost.priced.history
    table.update(history, cost)
    start = table.window_start(cost, budget, policy)
    older = None
    if start:
        older = _Turn(history[:start], "user")
        history = history[start:]
    k = start - table.lo
    cost.texts, cost.names, cost.labels = table.texts[k:], table.names[k:], table.labels[k:]
    full = sum(cost.texts) + sum(cost.labels) + sum(table.marks[k:])
    plan = _Layout(assembled, cost, budget, head, history, tail, examples, fixed_tokens,
                   example_tokens, base, full, older)
    plan.start = start
    if older is not None:
        plan.older_messages = table.messages_before(start)
        plan.older_at = older_at
    return plan


def _starts_turn(s: Segment) -> bool:
    return s.kind is _MESSAGE and s.role == "user" and s.block is None


def _fits_whole(plan: _Layout, policy: BudgetPolicy, counter: TokenCounter, add_bos: bool | None
                ) -> tuple[list[Segment], FlatPrompt, list[int]] | None:
    """The prompt unreduced, when its exact count fits: a prompt that fits is never reduced.

    Tokenized only when the estimate is close enough to the budget for that to matter.
    """
    if policy.examples == "never" and plan.examples:  # "never" is a choice, not a reduction
        return None
    if plan.older is not None or plan.base + plan.full_tokens > plan.budget * 1.03 + 8:
        return None
    final = [*plan.head, *plan.history, *plan.tail]
    flat = _flatten(plan.assembled, final, plan.cost.counts.flat)
    ids = _token_ids(flat, counter, plan)
    return (final, flat, ids) if len(ids) <= plan.budget else None


# -- reduce ----------------------------------------------------------------------------------


@dataclass
class _Reduction:
    """What the reductions chose: the turns kept (in chunks), their tiers, what was evicted,
    the examples kept and the memory shown. The count stage may evict more."""

    turns: list[_Turn]
    kept_chunks: list[list[_Turn]]
    tiers: dict[int, Tier]
    evicted: list[_Turn]
    kept_examples: list[Segment]
    examples_dropped: list[str]
    reductions: list[str]
    batched: list[str]
    consolidated: list[str]
    stripping: bool
    window: int
    """Chunks in the window (chunked eviction), for the stripping bands; 0: per message."""
    low_water: int
    clamped: bool
    memories: list[StoredMemory]
    memory: StoredMemory | None = None
    memory_segs: list[Segment] = field(default_factory=list)

    def tiers_for(self, kept: list[list[_Turn]], policy: BudgetPolicy) -> dict[int, Tier]:
        return _tiers(kept, policy.strip_bands, self.window) if self.stripping else {}

    def estimate(self, plan: _Layout) -> int:
        """The budget's own arithmetic for the composed prompt."""
        cost = plan.cost
        return (plan.fixed_tokens + cost.units(self.kept_examples, inside=True)
                + cost.units(self.memory_segs) + _history_tokens(self.kept_chunks, self.tiers))

    def outcome(self, policy: BudgetPolicy, older: _Turn | None) -> _Outcome:
        if self.tiers:
            self.reductions.append("stripping")
        canonical = ["batching", "consolidation", "stripping", "examples", "eviction"]
        chunked = policy.eviction == "chunked"
        # batched ids come from the planned history: only its own evicted turns can hold them
        gone = {mid for t in self.evicted if t is not older for mid in t.message_ids}
        return _Outcome(
            reductions=[r for r in canonical if r in self.reductions],
            batched=[m for m in self.batched if m not in gone],
            consolidated=[m for m in self.consolidated if m not in gone],
            evicted=self.evicted, examples_dropped=self.examples_dropped,
            eviction=("chunk" if chunked else "shift" if policy.eviction == "shift" else "message")
            if self.evicted else None,
            low_water=self.low_water if chunked else None, low_water_clamped=self.clamped,
            memory=self.memory,
        )


def _reduce(plan: _Layout, policy: BudgetPolicy) -> _Reduction:
    """Group (batching, consolidation), then evict, strip and drop examples as needed."""
    turns, full_tokens, reductions, batched, consolidated = _regroup(plan, policy)
    budget, fixed_tokens = plan.budget, plan.fixed_tokens
    stripping = policy.stripping and full_tokens + plan.base > budget
    drop_examples = policy.examples == "never" or (
        policy.examples == "threshold" and full_tokens + plan.base > budget)
    fixed_now = fixed_tokens if (drop_examples or policy.examples == "gradual") \
        else fixed_tokens + plan.example_tokens
    if fixed_now > budget:  # examples "keep" that cannot fit: the examples go, the rest stays
        fixed_now, drop_examples = fixed_tokens, True
    # A chunk is the budget above the low-water mark: evicting one takes the prompt from the
    # budget down to about the low-water mark. A low-water mark at or below the pinned top would
    # evict the whole history: it is clamped to the same share of the room the top leaves.
    chunked = policy.eviction == "chunked"
    low_water = int(budget * policy.low_water)
    clamped = chunked and fixed_now >= low_water
    if clamped:
        low_water = fixed_now + int((budget - fixed_now) * policy.low_water)
    window = max(1, round(1.0 / max(1e-6, 1.0 - policy.low_water))) if chunked else 0
    red = _Reduction(turns, [], {}, [], [], [], reductions, batched, consolidated, stripping,
                     window, low_water, clamped, plan.assembled.memories if policy.memory else [])
    _evict_stage(red, plan, policy, budget - fixed_now, max(1, budget - low_water) if chunked else 0)
    _examples_stage(red, plan, policy, drop_examples)
    return red


def _regroup(plan: _Layout, policy: BudgetPolicy
             ) -> tuple[list[_Turn], int, list[str], list[str], list[str]]:
    """Turns, their full cost, and the grouping reductions that apply (each only when the
    history would not fit without it; batching alone only when its text alone could fit)."""
    cost, base, budget = plan.cost, plan.base, plan.budget
    group = plan.assembled.group
    full_tokens = plan.full_tokens
    reductions: list[str] = []
    batched: list[str] = []
    consolidated: list[str] = []
    turns: list[_Turn] | None = None
    if base + full_tokens > budget and policy.batching and group and (
        not policy.consolidation or base + sum(cost.texts) <= budget
    ):
        grouped = _group(plan, batching=True, consolidation=False)
        batched = [mid for t in grouped if t.batched for mid in t.message_ids]
        if batched:
            turns, full_tokens = grouped, sum(t.full for t in grouped)
            reductions.append("batching")
    if base + full_tokens > budget and policy.consolidation:
        grouped = _group(plan, batching=policy.batching and group, consolidation=True)
        merged = [mid for t in grouped if t.narrated for mid in t.message_ids]
        if merged or (policy.batching and group and not batched):
            batched = [mid for t in grouped if t.batched and not t.narrated
                       for mid in t.message_ids] or batched
            turns, full_tokens = grouped, sum(t.full for t in grouped)
            if batched and "batching" not in reductions:
                reductions.append("batching")
            if merged:
                consolidated = merged
                reductions.append("consolidation")
    if turns is None:
        turns = _group(plan, batching=False, consolidation=False)
    return turns, full_tokens, reductions, batched, consolidated


def _evict_stage(red: _Reduction, plan: _Layout, policy: BudgetPolicy, available: int,
                 chunk_tokens: int) -> None:
    """Evict the fewest whole chunks (oldest first; one turn each without chunking) that make
    the history fit; with a summary stored, the memory shown takes its room too. Pinned turns
    (injections deeper than the kept history) stay at the top of what is kept."""
    turns = red.turns
    chunks = _chunks(turns, chunk_tokens) if chunk_tokens else [t.chunk() for t in turns]

    def tiers_for(kept: list[list[_Turn]]) -> dict[int, Tier]:
        return red.tiers_for(kept, policy)

    start = _evict(chunks, available, red.stripping, tiers_for)
    if start and red.memories:
        reserve_mem = plan.cost.units([_memory_segment(red.memories[-1], policy)])
        start = _evict(chunks, available - reserve_mem, red.stripping, tiers_for)
    chunks, start = _floor(chunks, start, turns, available)
    if start or plan.older is not None:
        red.reductions.append("eviction")
    red.kept_chunks = chunks[start:]
    red.evicted = [*([plan.older] if plan.older else []),
                   *(t for ch in chunks[:start] for t in ch if not t.pinned)]
    stranded = [t for ch in chunks[:start] for t in ch if t.pinned]
    if stranded:
        red.kept_chunks = [stranded, *red.kept_chunks]
    red.tiers = tiers_for(red.kept_chunks)
    _set_memory(red, plan, policy)


def _set_memory(red: _Reduction, plan: _Layout, policy: BudgetPolicy) -> None:
    """The stored summary that covers the evicted turns, as the memory segment (or none)."""
    red.memory = _choose_memory(plan, red.memories, red.evicted, policy)
    red.memory_segs = [_memory_segment(red.memory, policy)] if red.memory is not None else []


def _examples_stage(red: _Reduction, plan: _Layout, policy: BudgetPolicy, drop: bool) -> None:
    """Examples: gradual push-out fills what history left over, dropping from the last block."""
    examples, cost = plan.examples, plan.cost
    kept = [] if drop else list(examples)
    if not drop and policy.examples == "gradual":
        room = (plan.budget - plan.fixed_tokens - _history_tokens(red.kept_chunks, red.tiers)
                - cost.units(red.memory_segs))
        kept = []
        for block in _example_blocks(examples):
            block_cost = cost.units(block, inside=True)
            if block_cost > room:
                break
            kept.extend(block)
            room -= block_cost
    red.kept_examples = kept
    if len(kept) < len(examples):
        kept_set = {id(s) for s in kept}
        red.examples_dropped = sorted({s.extra.get("example_block", s.id) for s in examples
                                       if id(s) not in kept_set})
        red.reductions.append("examples")


def _history_tokens(kept: list[list[_Turn]], tiers: dict[int, Tier]) -> int:
    if not tiers:
        return sum(t.full for ch in kept for t in ch)
    return sum(t.tokens(tiers.get(id(t), _FULL)) for ch in kept for t in ch)


# -- compose and count -----------------------------------------------------------------------


def _count(plan: _Layout, red: _Reduction, policy: BudgetPolicy, counter: TokenCounter,
           add_bos: bool | None) -> tuple[list[Segment], FlatPrompt, list[int]]:
    """Compose, then check the exact count; while it is over (the estimate is ~1% off), evict
    the oldest unpinned turn, then the examples, so what fits stays."""
    while True:
        final = _compose([*plan.head, *red.memory_segs], plan.tail, red.kept_examples,
                         red.kept_chunks, red.tiers, plan.cost.counts.batches)
        flat = _flatten(plan.assembled, final, plan.cost.counts.flat)
        ids = _token_ids(flat, counter, plan)
        if len(ids) <= plan.budget:
            return final, flat, ids
        if any(not t.pinned for ch in red.kept_chunks for t in ch):
            _evict_one(red, plan, policy)
            continue
        if red.kept_examples:
            red.kept_examples = []
            red.examples_dropped = sorted({s.extra.get("example_block", s.id) for s in plan.examples})
            if "examples" not in red.reductions:
                red.reductions.append("examples")
            continue
        raise BudgetError(_overflow_message(plan.budget, len(ids)),
                          _section_breakdown(plan.head + plan.tail, plan.cost))


def _evict_one(red: _Reduction, plan: _Layout, policy: BudgetPolicy) -> None:
    """Evict the oldest unpinned kept turn (after an exact count came out over)."""
    kept = red.kept_chunks
    first = next(i for i, ch in enumerate(kept) if any(not t.pinned for t in ch))
    gone = next(t for t in kept[first] if not t.pinned)
    red.evicted.append(gone)
    keep = [t for t in kept[first] if t is not gone]
    red.kept_chunks = [*kept[:first], *([keep] if keep else []), *kept[first + 1:]]
    red.tiers = red.tiers_for(red.kept_chunks, policy)
    if "eviction" not in red.reductions:
        red.reductions.append("eviction")
    if not red.memory_segs:
        _set_memory(red, plan, policy)


# -- report ----------------------------------------------------------------------------------


@dataclass
class _Outcome:
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


def _finish(final: list[Segment], flat: FlatPrompt, ids: list[int], outcome: _Outcome,
            plan: _Layout, counts: _Counts, n_ctx: int, reserve: int, estimate: int,
            previous_ids: Sequence[int] | None) -> FittedPrompt:
    report = _report(final_segments=final, flat=flat, ids=ids, counts=counts, n_ctx=n_ctx,
                     reserve=reserve, plan=plan, outcome=outcome, previous_ids=previous_ids,
                     estimate=estimate)
    pinned_prefix = _pinned_prefix(flat, final, counts)
    return FittedPrompt(segments=final, flat=flat, ids=ids, report=report,
                        assembled=plan.assembled, pinned_prefix=pinned_prefix)


def _evict(chunks: list[list[_Turn]], available: int, stripping: bool, tiers_for: Any) -> int:
    """How many whole chunks (oldest first) must go for the rest to fit in `available`.

    Stripping only lowers a chunk's cost, so without it the sums are enough; with it, re-tier
    per candidate.
    """
    if all(len(ch) == 1 for ch in chunks):  # one turn each (no chunking): no sum per chunk
        sizes = [ch[0].full for ch in chunks]
        floors = [ch[0].content + len(ch[0].segs) for ch in chunks]
    else:
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
        while start < len(chunks) and _history_tokens(chunks[start:], tiers_for(chunks[start:])) > available:
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


def _choose_memory(plan: _Layout, memories: list[StoredMemory], evicted: list[_Turn],
                   policy: BudgetPolicy) -> StoredMemory | None:
    if not memories or not evicted or not policy.memory:
        return None
    return choose_memory(memories, _message_index(plan, evicted))


def _message_index(plan: _Layout, evicted: list[_Turn]) -> int:
    """Index (among the chat's visible messages) of the oldest message kept: the front.

    Messages before the planned history are all evicted: they are counted, not searched."""
    gone = {mid for t in evicted if t is not plan.older for mid in t.message_ids}
    i = plan.older_messages
    for s in (*plan.history, *plan.tail):
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
                ) -> tuple[list[int], list[str], str]:
    """Token ids, stop strings and text of another request built on a fitted prompt's segments."""
    flat = _flatten(fitted.assembled, segments)
    return _ids(flat, counter, fitted.assembled.template.bos_token, None), fitted.stop, flat.text


# --------------------------------------------------------------------------------------------
_KIND_VALUE = {k: k.value for k in SegmentKind}  # a dict look-up, not the enum descriptor
_SECTION_VALUE = {k: SECTION_OF.get(k, Section.STRUCTURE).value for k in SegmentKind}
_HISTORY_KINDS = (SegmentKind.CHAT_MESSAGE, SegmentKind.AUTHOR_NOTE, SegmentKind.DEPTH_INJECTION)
_PINNED, _KIND, _MESSAGE_ID = attrgetter("pinned"), attrgetter("kind"), attrgetter("message_id")
_TAIL_KINDS = (SegmentKind.POST_HISTORY, SegmentKind.GENERATION_HEADER)
_MESSAGE = SegmentKind.CHAT_MESSAGE  # enum attribute lookups are slow in hot loops
_FULL, _MARKERS, _CONTENT = Tier.FULL, Tier.MARKERS, Tier.CONTENT


def _split(segs: list[Segment]) -> tuple[list[Segment], list[Segment], list[Segment]]:
    """Head (story, examples, chat start), history (messages and injections), tail (PHI, header).

    The head is found from the front and the tail from the back: a long chat's thousands of
    history segments in between are never read."""
    first_hist = next(
        (i for i, s in enumerate(segs) if s.kind in _HISTORY_KINDS
         or (s.block or "").startswith("inject:")),
        None,
    )
    tail_start = len(segs)
    for i in range(len(segs) - 1, -1, -1):  # back to the newest history segment
        kind = segs[i].kind
        if kind in _HISTORY_KINDS:
            break
        if kind in _TAIL_KINDS:
            tail_start = i
    if first_hist is None or first_hist > tail_start:
        first_hist = tail_start
    return segs[:first_hist], segs[first_hist:tail_start], segs[tail_start:]


def _group(plan: _Layout, *, batching: bool, consolidation: bool) -> list[_Turn]:
    """The planned history's turns, round by round (a user message opens a turn in every
    grouping, so rounds group alone); a round the chat's history still holds unchanged takes
    the turns it grouped into before (`_History.rounds`)."""
    history, cost, table, start = plan.history, plan.cost, plan.cost.priced.history, plan.start
    memo = table.rounds.setdefault((batching, consolidation), {})
    bounds = [start, *table.starts[bisect_right(table.starts, start):], start + len(history)]
    turns: list[_Turn] = []
    for a, b in zip(bounds, bounds[1:], strict=False):
        if a == b:
            continue
        hit = memo.get(a)
        if hit is None or hit[0] != b:
            i, j = a - start, b - start
            hit = memo[a] = (b, _group_round(history[i:j], cost, cost.texts[i:j], cost.labels[i:j],
                                             cost.names[i:j], batching, consolidation))
        turns += hit[1]
    return turns


def _group_round(history: list[Segment], cost: _Costs, texts: list[int], labels: list[int],
                 names: list[int], batching: bool, consolidation: bool) -> list[_Turn]:
    """Group history segments into turns: one per message or injection block, or per batch.

    batching: consecutive character replies share a turn; consolidation: narrator (system)
    messages join the character replies next to them.
    """
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
            t.body = cost.counts.body(t.segs)
            t.narrated = any(s.role == "system" for s in t.segs)
        t.ids = t.message_ids
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


def _derive(s: Segment, update: dict[str, Any]) -> Segment:
    """`s.model_copy(update=update)` without pydantic's generic copy (a batch or a stripped band
    at 128k copies thousands of segments per turn): the same fields, the same fields-set."""
    new = Segment.__new__(Segment)
    object.__setattr__(new, "__dict__", {**s.__dict__, **update})
    object.__setattr__(new, "__pydantic_fields_set__", s.__pydantic_fields_set__ | update.keys())
    object.__setattr__(new, "__pydantic_extra__", s.__pydantic_extra__)
    object.__setattr__(new, "__pydantic_private__", s.__pydantic_private__)
    return new


def _structure(sid: str, text: str, role: str, block: str) -> Segment:
    new = Segment.__new__(Segment)  # as `model_construct` makes it, without its generic work
    fields = {"id": sid, "kind": SegmentKind.STRUCTURE, "role": role, "name": None, "text": text,
              "special": False, "pinned": False, "tier": _FULL, "source": "", "message_id": None,
              "block": block, "depth": None, "extra": {}}
    object.__setattr__(new, "__dict__", fields)
    object.__setattr__(new, "__pydantic_fields_set__", set(fields))
    object.__setattr__(new, "__pydantic_extra__", None)
    object.__setattr__(new, "__pydantic_private__", None)
    return new


def _batch(t: _Turn, memo: dict[int, tuple[list[Segment], str, list[Segment]]]) -> list[Segment]:
    """A batched turn's segments, the same objects while its messages and role stand (`memo`,
    by its first segment): a rendered turn is then reused too (`FlatMemo`)."""
    hit = memo.get(id(t.segs[0]))
    if hit is not None and hit[1] == t.role and same_objects(hit[0], t.segs):
        return hit[2]
    if len(memo) > 50_000:
        memo.clear()
    out = _batch_segments(t)
    memo[id(t.segs[0])] = (list(t.segs), t.role, out)
    return out


def _batch_segments(t: _Turn) -> list[Segment]:
    """A batched turn: one block, each message on its own line as `Name: text`."""
    block = f"batch:{t.segs[0].id}"
    role = t.role
    out: list[Segment] = []
    for k, s in enumerate(t.segs):
        if k:
            out.append(_structure(f"{block}:sep{k}", "\n", role, block))
        if s.name:
            out.append(_structure(f"{s.id}:name", f"{s.name}: ", role, block))
        out.append(_derive(s, {"block": block, "role": role, "name": None,
                                        "extra": {**s.extra, "orig_role": s.role or "", "speaker": s.name or ""}}))
    return out


def _compose(head: list[Segment], tail: list[Segment], kept_examples: list[Segment],
             kept_chunks: list[list[_Turn]], tiers: dict[int, Tier],
             batches: dict[int, tuple[list[Segment], str, list[Segment]]]) -> list[Segment]:
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
                out.append(_derive(s, {"block": block, "role": "system"}))
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
                    band.append(_derive(s, {"text": text, "name": None, "tier": tier}))
                continue
            close_band()
            out.extend(_batch(t, batches) if t.batched else t.segs)
    close_band()
    out.extend(tail)
    return out


def _flatten(assembled: AssembledPrompt, segments: list[Segment], memo: FlatMemo | None = None
             ) -> FlatPrompt:
    a = assembled
    clone = AssembledPrompt(segments=segments, template=a.template, user=a.user, char=a.char,
                            group=a.group, members=a.members, mode=a.mode, stop=a.stop, lore=a.lore)
    return clone.flatten(memo)


class _Costs:
    """Estimated tokens: content counts cached by text; markers, labels and the header from the
    template's cost rules (`templates.costs`), so the budget charges what the renderer writes."""

    def __init__(self, assembled: AssembledPrompt, counts: _Counts) -> None:
        self.counts = counts
        self.rules, self.header, self.header_slack = counts.rules(assembled)
        self.markers: dict[str, int] = self.rules.markers
        counter = counts.counter
        self.bos = 1 if getattr(counter, "add_bos", False) and getattr(counter, "bos_id", None) is not None else 0
        self.texts: list[int] = []
        self.labels: list[int] = []
        self.names: list[int] = []
        t = self.rules.template
        key = (id(t), t.name, self.rules.group, self.rules.user,
               self.rules.char if t.names_in_turns else None)
        self.priced = counts.memo(key)
        self.memo = self.priced.segs

    def seg(self, s: Segment) -> tuple[int, int, int]:
        """(text, name, label) tokens of one history segment, from the memo when seen before."""
        memo = self.memo
        hit = memo.get(id(s))
        if hit is None or hit[0] is not s:
            hit = (s, *self._seg_costs(s))
            if s.kind is _MESSAGE:
                memo[id(s)] = hit
        return hit[1], hit[2], hit[3]

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


def _token_ids(flat: FlatPrompt, counter: TokenCounter, plan: _Layout) -> list[int]:
    """The exact ids, tokenizing only pieces the cache has not seen and taking the turns seen
    before whole (see `token_ids`)."""
    counts = plan.cost.counts
    return _ids(flat, counter, plan.assembled.template.bos_token, counts.pieces, counts.blocks)


def _ids(flat: FlatPrompt, counter: TokenCounter, bos_token: str | None,
         pieces: dict[str, list[int]] | None, blocks: dict[int, Any] | None = None) -> list[int]:
    from .templates.render import token_ids

    return token_ids(flat.parts if flat.blocks is None else (), counter, bos_token=bos_token,
                     cache=pieces, blocks=flat.blocks, block_memo=blocks)


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


def _report(*, final_segments: list[Segment], flat: FlatPrompt, ids: list[int], counts: _Counts,
            n_ctx: int, reserve: int, plan: _Layout, outcome: _Outcome,
            previous_ids: Sequence[int] | None, estimate: int) -> BudgetReport:
    """The report: exact tokens per section and kind, what each reduction did, and retention;
    the tallies per span and segment are made when first read (`BudgetReport._lazy`)."""
    assembled, budget, counter = plan.assembled, plan.budget, counts.counter
    total = len(ids)
    stripped = {s.message_id: s.tier.value for s in final_segments
                if s.message_id and s.tier in (Tier.MARKERS, Tier.CONTENT)
                } if "stripping" in outcome.reductions else {}
    # messages before the planned history are all evicted: counted by the plan, listed on read
    older = plan.older if plan.older is not None and plan.older in outcome.evicted else None
    gone_here = [mid for t in outcome.evicted if t is not older for mid in t.message_ids]
    gone = set(gone_here)
    n_dropped = (plan.older_messages if older is not None else 0) + len(gone_here)

    def dropped() -> list[str]:
        return [*(older.message_ids if older is not None else ()), *gone_here]

    def tallies() -> dict[str, Any]:
        seg_tokens, kinds, sections, content_tokens = _tally(final_segments, flat, counts)
        structure = max(0, total - content_tokens)
        sections = _book_drift(total, seg_tokens, kinds, sections)
        history = sum(v for k, v in sections.items() if k in ("history", "memory"))
        return {"sections": sections, "kinds": kinds, "structure_tokens": structure,
                "structure_percent": round(100.0 * structure / total, 2) if total else 0.0,
                "history_share": round(history / total, 4) if total else 0.0,
                "segments": _segment_rows(plan, final_segments, seg_tokens, gone, stripped),
                "dropped": dropped()}

    lore_rows = [d.model_dump(mode="json") if hasattr(d, "model_dump") else dict(getattr(d, "__dict__", {}))
                 for d in getattr(assembled.lore, "decisions", []) or []]
    front, front_index, covered, memory = _retention(plan, outcome, final_segments, n_dropped, gone)
    # built without validation; the tallies only when read
    return BudgetReport._lazy(
        tallies,
        n_ctx=n_ctx,
        reserve=reserve,
        budget=budget,
        tokens=total,
        tokenizer="exact" if counter.exact else "estimate",
        tokenizer_name=counter.name,
        reductions=outcome.reductions,
        batched=outcome.batched,
        consolidated=outcome.consolidated,
        stripped=stripped,
        examples_dropped=outcome.examples_dropped,
        lore=lore_rows,
        reused_prefix=common_prefix(previous_ids, ids) if previous_ids is not None else None,
        estimated_tokens=estimate,
        window_fill=round(total / budget, 4) if budget else 0.0,
        turns_evicted=n_dropped,
        turns_covered=covered,
        eviction=outcome.eviction,
        low_water=outcome.low_water,
        low_water_clamped=outcome.low_water_clamped,
        front=front,
        front_index=front_index,
        memory=memory,
    )


def _book_drift(total: int, seg_tokens: dict[str, int], kinds: dict[str, int],
                sections: dict[str, int]) -> dict[str, int]:
    """Per-span counts differ slightly from one pass over the whole text (BPE merges across span
    boundaries): book the difference on the largest kind so the parts add up to the exact total.
    Returns the sections that hold tokens."""
    drift = total - sum(seg_tokens.values())
    if drift and kinds:
        big_kind = max(kinds, key=lambda k: kinds[k])
        kinds[big_kind] += drift
        big_sec = SECTION_OF.get(SegmentKind(big_kind), Section.STRUCTURE).value
        sections[big_sec] = sections.get(big_sec, 0) + drift
    return {k: v for k, v in sections.items() if v}


def _retention(plan: _Layout, outcome: _Outcome, final_segments: list[Segment], dropped: int,
               gone: set[str]) -> tuple[str | None, int | None, int, dict[str, Any] | None]:
    """The front (oldest message kept) and its index, the evicted messages the memory covers,
    and the memory shown. Evicted messages are the oldest ones, in order: the front's index is
    how many went, and the memory covers those up to its own message."""
    front = next((s.message_id for s in final_segments if s.kind is _MESSAGE and s.message_id
                  and s.message_id not in gone), None)
    front_index: int | None = _message_index(plan, outcome.evicted)
    if front is None and not front_index:
        front_index = None  # no messages at all
    if outcome.memory is None:
        return front, front_index, 0, None
    m = outcome.memory
    memory = {"text": m.text, "message_id": m.message_id, "covers": m.index + 1}
    return front, front_index, min(dropped, m.index + 1), memory


def _tally(final_segments: list[Segment], flat: FlatPrompt, counts: _Counts
           ) -> tuple[dict[str, int], dict[str, int], dict[str, int], int]:
    """Tokens per segment, per kind and per section (span by span), and of content alone."""
    by_id = {s.id: s for s in final_segments}
    seg_tokens: dict[str, int] = {}
    content_tokens = 0
    kinds: dict[str, int] = {}
    sections: dict[str, int] = {}
    for span in flat.spans:
        text = span.part.text
        if not text:
            continue
        n = counts.count(text, span.part.special)
        seg = by_id.get(span.segment or "")
        key = span.segment or "structure"
        seg_tokens[key] = seg_tokens.get(key, 0) + n
        kind, is_content = _span_kind(span, seg)
        if is_content:
            content_tokens += n
        kv = _KIND_VALUE[kind]
        kinds[kv] = kinds.get(kv, 0) + n
        sec = _SECTION_VALUE[kind]
        sections[sec] = sections.get(sec, 0) + n
    return seg_tokens, kinds, sections, content_tokens


_NOT_CONTENT = (SegmentKind.STRUCTURE, SegmentKind.GENERATION_HEADER)


def _span_kind(span: Span, seg: Segment | None) -> tuple[SegmentKind, bool]:
    """The kind a span's tokens count as, and whether they are content. Content is the segment's
    own text; template markers, and plain text the template adds around it (a `Name: ` label),
    are structure. A context preset's own text (story string) keeps its kind."""
    text = span.part.text
    is_content = (seg is not None and not span.part.special and seg.kind not in _NOT_CONTENT
                  and text in seg.text)
    if seg is not None and (is_content or seg.kind is SegmentKind.STORY_STRING):
        return seg.kind, is_content
    return SegmentKind.STRUCTURE, is_content


def span_sections(fitted: FittedPrompt) -> list[tuple[Span, Section]]:
    """Every non-empty span of the fitted prompt with the section the report books its tokens
    to: the report's own rule, for views that colour the prompt by section."""
    by_id = {s.id: s for s in fitted.segments}
    return [(span, Section(_SECTION_VALUE[_span_kind(span, by_id.get(span.segment or ""))[0]]))
            for span in fitted.flat.spans if span.part.text]


def _segment_rows(plan: _Layout, final_segments: list[Segment], seg_tokens: dict[str, int],
                  dropped: set[str], stripped: dict[str, str]) -> list[dict[str, Any]]:
    """One row per assembled segment, in order; the turns before the planned history are all
    evicted (or dropped, for what is not a message) and written without look-ups."""
    segs = plan.assembled.segments
    kind_value = _KIND_VALUE
    final_ids = {s.id for s in final_segments}

    def row(s: Segment) -> dict[str, Any]:
        status = "kept"
        if s.id not in final_ids:
            status = "evicted" if s.message_id in dropped else "dropped"
        elif s.message_id in stripped:
            status = f"stripped:{stripped[s.message_id]}"
        return {"id": s.id, "kind": kind_value[s.kind], "role": s.role, "name": s.name,
                "tokens": seg_tokens.get(s.id, 0), "status": status}

    older = plan.older.segs if plan.older is not None else []
    at, end = plan.older_at, plan.older_at + len(older)
    gone = [{"id": s.id, "kind": kind_value[s.kind], "role": s.role, "name": s.name, "tokens": 0,
             "status": "evicted" if s.message_id else "dropped"} for s in older]
    return [*map(row, segs[:at]), *gone, *map(row, segs[end:])]
