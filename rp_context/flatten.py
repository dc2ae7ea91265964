"""Flatten segments once through a template into text parts that each map back to one segment.

Raw segments (role None, SillyTavern's story string and separators) are written verbatim; runs
of turn segments are rendered by the instruct template in one call, so first/last sequences,
system merging and trimming behave as the family demands. Segments that share a `block` render
as one turn. Every output part carries the id of the segment it came from.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any

from ._types import Mode
from .reuse import same_objects
from .segments import Segment, SegmentKind, Tier
from .templates.model import InstructTemplate, Message
from .templates.render import (
    Conversation,
    generation_parts,
    message_parts,
    opening_parts,
    render_instruct,
    render_stops,
)
from .tokens import TextPart

__all__ = ["Span", "FlatPrompt", "FlatMemo", "flatten", "Mode"]



@dataclass(frozen=True, slots=True)
class Span:
    """One rendered part and the segment it belongs to (None: template structure of no segment)."""

    part: TextPart
    segment: str | None


@dataclass
class FlatPrompt:
    """The flattened prompt: spans in order, their text, and the stop strings of this render."""

    spans: list[Span]
    stop: list[str] = field(default_factory=list)
    blocks: list[tuple[list[TextPart], bool]] | None = None
    """The spans' parts in blocks, in order (a rendered turn each, marked True when it is the
    same list as the turn's last render): what the exact count reuses turn by turn. None: not
    kept (`parts` then)."""

    @property
    def text(self) -> str:
        return "".join(s.part.text for s in self.spans)

    @property
    def parts(self) -> list[TextPart]:
        return [s.part for s in self.spans]

    def segment_text(self, segment_id: str) -> str:
        """Everything rendered for one segment (its content and, for turns, its markers)."""
        return "".join(s.part.text for s in self.spans if s.segment == segment_id)

    def char_map(self) -> list[tuple[int, int, str | None]]:
        """(start, end, segment id) for every span: each character maps to one segment."""
        out: list[tuple[int, int, str | None]] = []
        pos = 0
        for s in self.spans:
            end = pos + len(s.part.text)
            if end > pos:
                out.append((pos, end, s.segment))
            pos = end
        return out


class FlatMemo:
    """The rendered spans of turns in the middle of a conversation, kept across renders: a long
    chat's next prompt writes the same turns again, and a middle turn's text depends only on its
    segments (for templates whose messages render alone, `Conversation.local`). Hold one per chat
    with the `BudgetCache`; it starts over for another template or other names."""

    def __init__(self, limit: int = 50_000) -> None:
        self.limit = limit
        self._key: tuple[Any, ...] | None = None
        self._units: dict[int, tuple[list[Segment], list[Span], list[TextPart]]] = {}
        self.turns: dict[int, _Unit] = {}
        """Turns by their first segment, reused while their segments follow as before (`_units`)."""

    def table(self, key: tuple[Any, ...]) -> dict[int, tuple[list[Segment], list[Span], list[TextPart]]]:
        """The spans by a turn's first segment (its id), for one template and set of names."""
        if key != self._key or len(self._units) > self.limit:
            self._key, self._units = key, {}
        return self._units


@dataclass(slots=True)
class _Unit:
    """A turn (role set) or raw text (role None) made of one or more segments."""

    role: str | None
    segments: list[Segment]
    examples: bool = False
    _text: str | None = None
    _ends: list[int] | None = None
    start: int | None = None
    """Where a new turn's first segment is in the segments being grouped (for `_remember`)."""

    @property
    def text(self) -> str:
        """The unit's text (read once its segments are all in: `_units` builds it first)."""
        if self._text is None:
            segs = self.segments
            self._text = segs[0].text if len(segs) == 1 else "".join(s.text for s in segs)
        return self._text

    @property
    def ends(self) -> list[int]:
        """Where each segment's text ends in `text`."""
        if self._ends is None:
            self._ends = list(accumulate(len(s.text) for s in self.segments))
        return self._ends

    @property
    def head(self) -> Segment:
        return self.segments[0]


def _units(segments: Sequence[Segment], memo: dict[int, _Unit] | None = None) -> list[_Unit]:
    """The segments as units: raw text runs, and turns (segments sharing a block are one).
    With `memo`, a turn seen before is taken whole, the same `_Unit`, when its segments follow
    here as they did (compared in C) and its edges fall where they fell."""
    units: list[_Unit] = []
    last: _Unit | None = None
    shared = False  # `last` is the memo's (never grown in place)
    i, n = 0, len(segments)
    while i < n:
        seg = segments[i]
        if memo is not None and seg.role is not None and (last is None or not _joins(seg, last)):
            hit = memo.get(id(seg))
            if hit is not None:
                k = i + len(hit.segments)
                if segments[i:k] == hit.segments and (k == n or not _joins(segments[k], hit)):
                    units.append(hit)
                    last, i, shared = hit, k, True
                    continue
        i += 1
        if seg.tier == Tier.EVICTED or seg.kind == SegmentKind.GENERATION_HEADER:
            continue
        if last is not None and _joins(seg, last):
            if shared:
                last = units[-1] = _Unit(last.role, [*last.segments], examples=last.examples)
                shared = False
            last.segments.append(seg)
            continue
        last = _Unit(seg.role, [seg], examples=seg.role is not None and seg.kind == SegmentKind.EXAMPLE_DIALOGUE)
        units.append(last)
        shared = False
        if memo is not None and seg.role is not None:
            last.start = i - 1
    if memo is not None:
        _remember(units, segments, memo)
    return units


def _joins(seg: Segment, last: _Unit) -> bool:
    """Whether `seg` continues unit `last`: raw text after raw text, or the same block."""
    if seg.role is None:
        return last.role is None
    return seg.block is not None and last.head.block == seg.block


def _remember(units: list[_Unit], segments: Sequence[Segment], memo: dict[int, _Unit]) -> None:
    """Keep the new turns whose segments lay side by side (`_units` takes them whole later)."""
    if len(memo) > 50_000:
        memo.clear()
    for unit in units:
        at = unit.start
        if at is not None:
            unit.start = None
            k = len(unit.segments)
            if segments[at + k - 1] is unit.segments[-1]:
                memo[id(unit.head)] = unit


def flatten(
    segments: Sequence[Segment],
    template: InstructTemplate,
    *,
    user: str = "User",
    char: str = "Assistant",
    speaker: str | None = None,
    group: bool = False,
    mode: Mode = "normal",
    stop_names: Sequence[str] = (),
    memo: FlatMemo | None = None,
) -> FlatPrompt:
    """Render `segments` with `template`; `mode` picks the ending (header, open message, user turn).
    `memo` (one per chat) lets the turns a previous render wrote be reused."""
    table = None
    if memo is not None:  # the reply's author shows in a middle turn only through name macros
        named = template.names_in_turns
        table = memo.table((template.model_dump_json(), user, char if named else None, group))
    units = _units(segments, memo.turns if memo is not None else None)
    header = next((s for s in segments if s.kind == SegmentKind.GENERATION_HEADER), None)
    # Runs: raw units alone; consecutive example turns; consecutive other turns.
    runs: list[list[_Unit]] = []
    for unit in units:
        prev = runs[-1][-1] if runs else None
        if (
            prev is not None
            and unit.role is not None
            and prev.role is not None
            and unit.examples == prev.examples
        ):
            runs[-1].append(unit)
        else:
            runs.append([unit])
    last_turn_run = max(
        (i for i, r in enumerate(runs) if r[0].role is not None and not r[0].examples), default=None
    )
    spans: list[Span] = []
    stops: list[str] = []
    blocks: list[tuple[list[TextPart], bool]] | None = []
    for i, run in enumerate(runs):
        if run[0].role is None:
            raw = [Span(TextPart(seg.text, seg.special), seg.id) for seg in run[0].segments]
            spans += raw
            if blocks is not None:
                blocks.append(([s.part for s in raw], False))
            continue
        is_last = i == last_turn_run
        rendered, run_stops, run_blocks = _render_run(
            run,
            template,
            user=user,
            char=char,
            speaker=speaker,
            group=group,
            examples=run[0].examples,
            generation=is_last and mode == "normal" and header is not None,
            stop_names=stop_names,
            memo=table,
        )
        if is_last:
            stops = run_stops
            if mode == "continue":
                rendered, blocks = _open_last(rendered, run[-1]), None
        spans.extend(rendered)
        if blocks is not None:
            blocks += run_blocks
    end: list[Span] = []
    if header is not None and mode == "impersonate":
        end = _impersonate_header(template, user=user, char=char, group=group, header=header)
    elif header is not None and last_turn_run is None and mode == "normal":
        # no turns at all: the header still has to be written
        end = _render_run([], template, user=user, char=char, speaker=speaker, group=group,
                          examples=False, generation=True, stop_names=stop_names)[0]
    spans += end
    if blocks is not None and end:
        blocks.append(([s.part for s in end], False))
    if header is not None:
        spans = [
            Span(s.part, header.id) if s.segment is None and s.part.source == -1 else s
            for s in spans
        ]
    if not stops:
        stops = render_stops(template, user=user, char=speaker or char, stop_names=stop_names)
    return FlatPrompt(spans=spans, stop=stops, blocks=blocks)


def _render_run(
    run: list[_Unit],
    template: InstructTemplate,
    *,
    user: str,
    char: str,
    speaker: str | None,
    group: bool,
    examples: bool,
    generation: bool,
    stop_names: Sequence[str],
    memo: dict[int, tuple[list[Segment], list[Span], list[TextPart]]] | None = None,
) -> tuple[list[Span], list[str], list[tuple[list[TextPart], bool]]]:
    t = template
    if examples:
        # SillyTavern formats example turns with the plain sequences, never first/last ones.
        t = template.model_copy(
            update={
                "first_input_sequence": "",
                "first_output_sequence": "",
                "last_input_sequence": "",
                "user_alignment_message": "",
            }
        )
    if memo is not None and not examples:
        conv = Conversation.of(t, [u.role or "system" for u in run], group=group, user=user, char=char)
        if conv.local:
            spans, blocks = _render_local(run, conv, memo)
            if generation:
                gen = [Span(TextPart(p.text, p.special, -1), None) for p in
                       generation_parts(t, group=group, user=user, char=char, speaker=speaker)]
                spans += gen
                blocks.append(([s.part for s in gen], False))
            return spans, render_stops(t, user=user, char=speaker or char, stop_names=stop_names), blocks
    messages = [_message(unit) for unit in run]
    content_only = {j for j, unit in enumerate(run) if unit.head.tier == Tier.CONTENT}
    rendered = render_instruct(
        t,
        messages,
        add_generation_prompt=generation,
        content_only=content_only,
        group=group,
        user=user,
        char=char,
        speaker=speaker,
        stop_names=stop_names,
    )
    spans: list[Span] = []
    index_map = _index_map(messages, rendered.parts, t)
    n = len(messages)
    for part in rendered.parts:
        source = part.source
        if source is None:
            spans.append(Span(TextPart(part.text, part.special, -1), None))
            continue
        j = (source if 0 <= source < n else None) if index_map is None else index_map.get(source)
        if j is None:
            spans.append(Span(TextPart(part.text, part.special), None))
            continue
        spans.extend(_part_spans(part, run[j]))
    return spans, rendered.stop, [([s.part for s in spans], False)]


def _message(unit: _Unit) -> Message:
    head = unit.head
    name = head.name if head.kind in (SegmentKind.CHAT_MESSAGE, SegmentKind.EXAMPLE_DIALOGUE) else None
    return Message(unit.role or "system", unit.text, name)


def _render_local(run: list[_Unit], conv: Conversation,
                  memo: dict[int, tuple[list[Segment], list[Span], list[TextPart]]]
                  ) -> tuple[list[Span], list[tuple[list[TextPart], bool]]]:
    """`render_instruct`'s spans for a run whose messages render alone, message by message: a
    turn in the middle (not the first, the last user turn or the last) is taken from `memo`
    when its segments are the same objects as when it was rendered. With them, the parts in
    blocks (`FlatPrompt.blocks`)."""
    t = conv.template
    first_role = run[0].role or "system" if run else None
    spans = [Span(TextPart(p.text, p.special, -1), None) for p in opening_parts(t, first_role)]
    blocks: list[tuple[list[TextPart], bool]] = [([s.part for s in spans], False)]
    content_only = [unit.head.tier == Tier.CONTENT for unit in run]
    first_emit = content_only.index(False) if False in content_only else len(run)
    first = conv.first if conv.first is not None else len(run)
    edges = (conv.last_user, conv.last)
    for j, unit in enumerate(run):
        middle = j > first and j not in edges and (j > first_emit or not t.message_separator)
        if middle:
            hit = memo.get(id(unit.head))
            if hit is not None and same_objects(hit[0], unit.segments):
                spans += hit[1]
                blocks.append((hit[2], True))
                continue
        parts = message_parts(conv, j, _message(unit), content_only=content_only[j], emitted=j > first_emit)
        unit_spans = [span for part in parts for span in _part_spans(part, unit)]
        unit_parts = [span.part for span in unit_spans]
        if middle:
            memo[id(unit.head)] = (unit.segments, unit_spans, unit_parts)
        spans += unit_spans
        blocks.append((unit_parts, middle))
    return spans, blocks


def _part_spans(part: TextPart, unit: _Unit) -> list[Span]:
    """A rendered part of one unit as spans: structure belongs to the unit's first segment,
    content is cut at its segments' boundaries."""
    if part.special:
        return [Span(TextPart(part.text, True), unit.head.id)]
    return _split_content(part, unit)


def _index_map(messages: list[Message], parts: list[TextPart], t: InstructTemplate) -> dict[int, int] | None:
    """Map the renderer's message indices to ours (a user alignment message adds one); None:
    they are the same."""
    if not t.user_alignment_message:
        return None
    first_turn = next((i for i, m in enumerate(messages) if m.role != "system"), None)
    if first_turn is None or messages[first_turn].role != "assistant":
        return None
    out = {i: i for i in range(first_turn)}
    for i in range(first_turn, len(messages)):
        out[i + 1] = i
    return out


def _split_content(part: TextPart, unit: _Unit) -> list[Span]:
    """Cut one content part at its unit's segment boundaries (a batched turn, a story block)."""
    segs = unit.segments
    if len(segs) == 1:
        seg = segs[0]
        return [Span(TextPart(part.text, seg.special and part.text != f"{seg.name}: "), seg.id)]
    full = unit.text
    start = full.find(part.text) if part.text else 0
    if start < 0:
        # a name prefix or other text the renderer added: belongs to the turn's first segment
        return [Span(TextPart(part.text, False), segs[0].id)]
    end = start + len(part.text)
    spans: list[Span] = []
    ends = unit.ends
    k = bisect_right(ends, start)  # the first segment ending after `start`
    while k < len(segs):
        seg = segs[k]
        s0 = ends[k] - len(seg.text)
        if s0 >= end:
            break
        a, b = max(s0, start), min(ends[k], end)
        if a < b:
            spans.append(Span(TextPart(full[a:b], seg.special), seg.id))
        k += 1
    return spans


def _open_last(spans: list[Span], last: _Unit) -> list[Span]:
    """Continue mode: drop the suffix after the last message's content, so the model goes on."""
    ids = {s.id for s in last.segments}
    cut = len(spans)
    for k in range(len(spans) - 1, -1, -1):
        part = spans[k].part
        if spans[k].segment in ids and part.special:
            cut = k
            continue
        break
    return spans[:cut]


def _impersonate_header(
    t: InstructTemplate, *, user: str, char: str, group: bool, header: Segment
) -> list[Span]:
    """SillyTavern's impersonation header: the input sequence, plus the user's name per names behaviour."""
    from .templates.costs import header_shows_label
    from .templates.render import _rstrip_parts, append_structure, sequence_parts

    sep = "\n" if t.wrap else ""
    seq = sequence_parts(t, t.input_sequence, user, user, char, -1)  # names as content
    if header_shows_label(t, group=group):
        parts = [*append_structure(seq, sep, -1), TextPart(f"{user}:", False, -1)]
    else:
        parts = append_structure(_rstrip_parts(seq) if t.wrap else seq, sep, -1)
    return [Span(p, header.id) for p in parts if p.text]

