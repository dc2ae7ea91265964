"""Reasoning blocks: a reply split into the model's reasoning and the text the reader sees.

Reasoning models open their reply with a block of thought: `<think>…</think>` (DeepSeek-R1,
Qwen3, QwQ, GLM), gpt-oss's analysis channel (`<|channel|>analysis<|message|>…<|end|>`), Gemma
4's thought channel (`<|channel>thought…<channel|>`). When the template (or a prefill) opened
the block itself, the reply starts mid-reasoning. `ReasoningSplitter` takes the reply as it
streams, in pieces cut anywhere, and hands back reasoning and text apart; nothing it shows is
ever taken back. `ReasoningFormat` is the instruct preset's `reasoning:` block (SillyTavern's
reasoning template and settings plus the thinking switch and a token budget).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from .chat import ChatMessage

__all__ = [
    "ReasoningFormat",
    "ReasoningShape",
    "KNOWN_SHAPES",
    "Delta",
    "Split",
    "ReasoningSplitter",
    "split_reasoning",
    "orphan_split",
    "shapes_for",
    "shape_opened_by",
    "format_reasoning",
    "THINKING_KEY",
    "strip_block",
    "prompt_texts",
    "prepare_prompt",
    "thinking_for",
    "thinking_prefill",
    "thinking_switch",
    "closing_text",
    "split_stops",
    "template_switch",
    "template_context",
    "switch_prefills",
]


class ReasoningFormat(BaseModel):
    """How a model writes its reasoning and what rp-context does with it (`reasoning:` in an
    instruct preset). `prefix`, `suffix` and `separator` are SillyTavern's reasoning template;
    the defaults are its DeepSeek template."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    prefix: str = "<think>\n"
    """Opens the reasoning block (matched with surrounding whitespace ignored)."""
    suffix: str = "\n</think>"
    """Closes the reasoning block."""
    separator: str = "\n\n"
    """Between the closed block and the reply when reasoning is written back into a prompt."""
    parse: bool = True
    """Split replies into reasoning and text (SillyTavern's auto-parse)."""
    add_to_prompt: int = Field(0, ge=0)
    """Send the reasoning of the last N replies back to the model (0: none, the default)."""
    thinking: bool | None = None
    """Thinking on or off for new chats; None leaves the model's own default."""
    start_prefill: str | None = None
    """Written after the generation header when thinking is switched on; None: the `prefix`
    (unless the header already opens the block or `on_switch` does it)."""
    off_prefill: str | None = None
    """Written after the generation header when thinking is off; None: an empty block,
    `prefix + suffix + separator` (`<think>\\n\\n</think>\\n\\n`, what Qwen3's own switch
    writes), unless `off_switch` does it."""
    off_switch: str = ""
    """Appended to the last user message when thinking is off (Qwen3's ` /no_think`)."""
    on_switch: str = ""
    """Appended to the last user message when thinking is switched on (Qwen3's ` /think`)."""
    budget: int | None = Field(None, ge=1)
    """Reasoning tokens after which the block is closed and the reply begins (None: no limit)."""


@dataclass(frozen=True, slots=True)
class ReasoningShape:
    """One way a model marks its reasoning: the opener, what closes it, and channel markers
    that may open the reply after it (dropped from the text)."""

    name: str
    opener: str
    closers: tuple[str, ...]
    reply_markers: tuple[str, ...] = ()


THINK = ReasoningShape("think", "<think>", ("</think>",))
GPT_OSS = ReasoningShape(
    "gpt-oss",
    "<|channel|>analysis<|message|>",
    ("<|end|>",),
    ("<|start|>assistant<|channel|>final<|message|>", "<|channel|>final<|message|>"),
)
GEMMA4 = ReasoningShape("gemma4", "<|channel>thought", ("<channel|>",))
KNOWN_SHAPES: tuple[ReasoningShape, ...] = (THINK, GPT_OSS, GEMMA4)
"""The shapes recognised whatever the preset says: `<think>`, gpt-oss, Gemma 4."""


def shapes_for(fmt: ReasoningFormat | None) -> tuple[ReasoningShape, ...]:
    """The preset's own shape first (its prefix/suffix without surrounding whitespace), then the
    known ones it does not repeat."""
    shapes: list[ReasoningShape] = []
    if fmt is not None and fmt.prefix.strip() and fmt.suffix.strip():
        opener, closer = fmt.prefix.strip(), fmt.suffix.strip()
        known = next((s for s in KNOWN_SHAPES if s.opener == opener), None)
        if known is not None and closer in known.closers:
            shapes.append(known)
        else:
            shapes.append(ReasoningShape("preset", opener, (closer,)))
    shapes += [s for s in KNOWN_SHAPES if all(s.opener != x.opener for x in shapes)]
    return tuple(shapes)


def shape_opened_by(prompt_tail: str, shapes: Iterable[ReasoningShape]) -> ReasoningShape | None:
    """The shape whose opener the prompt ends with (the template or a prefill opened the
    block, so the reply starts mid-reasoning); None when the prompt leaves it closed."""
    tail = prompt_tail.rstrip()
    for shape in shapes:
        if tail.endswith(shape.opener):
            return shape
    return None


def format_reasoning(fmt: ReasoningFormat, reasoning: str, text: str | None) -> str:
    """Reasoning written back into a prompt the SillyTavern way: `prefix reasoning suffix
    separator text`, or `prefix reasoning` alone for an unfinished block (`text` None)."""
    if text is None:
        return f"{fmt.prefix}{reasoning}"
    return f"{fmt.prefix}{reasoning}{fmt.suffix}{fmt.separator}{text}"


class Delta(NamedTuple):
    """What one fed piece released: reasoning and reply text, either possibly empty."""

    reasoning: str = ""
    text: str = ""


class Split(NamedTuple):
    """A whole reply split: `reasoning` (stripped), `text`, and whether the block was left open."""

    reasoning: str
    text: str
    unfinished: bool = False
    shape: str | None = None


State = Literal["start", "reasoning", "after", "text"]


def _partial_tail(buf: str, markers: Iterable[str]) -> int:
    """Length of the longest end of `buf` that is a proper start of one of `markers`."""
    best = 0
    for m in markers:
        for n in range(min(len(m) - 1, len(buf)), best, -1):
            if buf.endswith(m[:n]):
                best = n
                break
    return best


class ReasoningSplitter:
    """Feed a reply's pieces in order; get back reasoning and text as soon as they are certain.

    A block is recognised only at the start of the reply (after whitespace), as SillyTavern
    does, so a story that mentions `<think>` later is left alone. `inside` starts mid-block
    (the prompt opened it). `budget` with `count` (text → tokens; default: pieces fed) marks
    the block `over_budget`; the caller then closes it (see `close`).
    """

    def __init__(
        self,
        shapes: Sequence[ReasoningShape] = KNOWN_SHAPES,
        *,
        inside: ReasoningShape | None = None,
        budget: int | None = None,
        count: Callable[[str], int] | None = None,
        enabled: bool = True,
    ) -> None:
        self.shapes = tuple(shapes)
        self.enabled = enabled
        self.state: State = "start" if enabled else "text"
        self.shape: ReasoningShape | None = None
        self._held = ""
        self._reasoning: list[str] = []
        self._text: list[str] = []
        self.budget = budget
        self._count = count
        self.reasoning_pieces = 0
        self.forced_close = False
        """True when the caller closed the block (budget), not the model."""
        if inside is not None and enabled:
            self.shape, self.state = inside, "reasoning"

    # -- results so far ---------------------------------------------------------------------
    @property
    def reasoning(self) -> str:
        return "".join(self._reasoning)

    @property
    def text(self) -> str:
        return "".join(self._text)

    @property
    def in_reasoning(self) -> bool:
        return self.state == "reasoning"

    @property
    def reasoning_tokens(self) -> int:
        if self._count is None:
            return self.reasoning_pieces
        return self._count(self.reasoning)

    @property
    def over_budget(self) -> bool:
        return self.in_reasoning and self.budget is not None and self.reasoning_tokens >= self.budget

    # -- feeding ----------------------------------------------------------------------------
    def feed(self, piece: str) -> Delta:
        """Add the next piece of the reply; return what is now certain."""
        if not piece:
            return Delta()
        if self.state == "reasoning":
            self.reasoning_pieces += 1
        r: list[str] = []
        t: list[str] = []
        self._held += piece
        self._step(r, t, final=False)
        return self._emit(r, t)

    def finish(self) -> Delta:
        """The reply ended: release whatever was held back."""
        r: list[str] = []
        t: list[str] = []
        self._step(r, t, final=True)
        if self._held:
            (r if self.state == "reasoning" else t).append(self._held)
            self._held = ""
        return self._emit(r, t)

    def close(self) -> Delta:
        """Close an open block now (the budget ran out): held text goes to the reasoning and the
        rest of the reply is text. Returns what was released."""
        r: list[str] = []
        if self.state == "reasoning":
            if self._held:
                r.append(self._held)
                self._held = ""
            self.state = "after"
            self.forced_close = True
        return self._emit(r, [])

    def result(self) -> Split:
        """The split so far (call after `finish`)."""
        return Split(self.reasoning.strip(), self.text, self.state == "reasoning",
                     self.shape.name if self.shape else None)

    def _emit(self, r: list[str], t: list[str]) -> Delta:
        reasoning, text = "".join(r), "".join(t)
        if reasoning:
            self._reasoning.append(reasoning)
        if text:
            self._text.append(text)
        return Delta(reasoning, text)

    def _step(self, r: list[str], t: list[str], *, final: bool) -> None:
        while self._held:
            before = (self.state, len(self._held))
            if self.state == "start":
                self._at_start(t, final)
            elif self.state == "reasoning":
                self._in_block(r, final)
            elif self.state == "after":
                self._after_block(t, final)
            else:
                t.append(self._held)
                self._held = ""
            if (self.state, len(self._held)) == before:
                return  # waiting for more text

    def _at_start(self, t: list[str], final: bool) -> None:
        body = self._held.lstrip()
        if not body and not final:
            return  # only whitespace so far: a block may still open
        for shape in self.shapes:
            if body.startswith(shape.opener):
                self.shape, self.state = shape, "reasoning"
                self._held = body[len(shape.opener):]
                return
        markers = [m for s in self.shapes for m in s.reply_markers]
        for m in markers:
            if body.startswith(m):
                self.state, self._held = "after", body[len(m):]
                return
        if not final and any(x.startswith(body) for x in (*(s.opener for s in self.shapes), *markers)):
            return  # could still become an opener
        self.state = "text"

    def _in_block(self, r: list[str], final: bool) -> None:
        assert self.shape is not None
        buf = self._held
        if not self._reasoning and not r:
            buf = buf.lstrip("\n")  # the newline after the opener is not reasoning
        hits = [(i, c) for c in self.shape.closers if (i := buf.find(c)) >= 0]
        if hits:
            i, closer = min(hits)
            if buf[:i]:
                r.append(buf[:i])
            self.state, self._held = "after", buf[i + len(closer):]
            return
        keep = 0 if final else _partial_tail(buf, self.shape.closers)
        if buf[: len(buf) - keep]:
            r.append(buf[: len(buf) - keep])
        self._held = buf[len(buf) - keep:]

    def _after_block(self, t: list[str], final: bool) -> None:
        body = self._held.lstrip()
        if not body and not final:
            self._held = body
            return
        markers = self.shape.reply_markers if self.shape else ()
        for m in markers:
            if body.startswith(m):
                self._held = body[len(m):]
                self.state = "text"
                return
        if not final and any(m.startswith(body) for m in markers):
            self._held = body
            return
        self.state, self._held = "text", body


def split_reasoning(
    text: str,
    fmt: ReasoningFormat | None = None,
    *,
    inside: bool = False,
) -> Split:
    """Split a whole reply (or a stored message) into reasoning and text.

    `inside`: the reply began mid-block (the prompt opened it). A reply with no opener whose
    text holds a lone closer of the preset's shape (an R1 template that opened `<think>`
    unseen) is split there too.
    """
    shapes = shapes_for(fmt)
    splitter = ReasoningSplitter(shapes, inside=shapes[0] if inside else None,
                                 enabled=fmt is None or fmt.parse)
    splitter.feed(text)
    splitter.finish()
    result = splitter.result()
    if splitter.enabled and splitter.shape is None:
        result = orphan_split(result.text, shapes[0]) or result
    return result


def orphan_split(text: str, shape: ReasoningShape) -> Split | None:
    """A reply with no opener whose text holds a lone closer: the model began mid-block (an
    R1-style model whose own template would have opened `<think>`). Text before it is reasoning."""
    for closer in shape.closers:
        i = text.find(closer)
        if i >= 0 and shape.opener not in text[:i]:
            rest = text[i + len(closer):].lstrip()
            for m in shape.reply_markers:
                if rest.startswith(m):
                    rest = rest[len(m):]
            return Split(text[:i].strip(), rest, False, shape.name)
    return None


# ------------------------------------------------------------------------- prompts and chats

THINKING_KEY = "rp_context_thinking"
"""Chat-metadata key holding this chat's thinking switch (true/false; absent: the preset's)."""


def _marks(shapes: Sequence[ReasoningShape]) -> tuple[str, ...]:
    return tuple(m for s in shapes for m in (s.opener, *s.reply_markers))


def strip_block(text: str, shapes: Sequence[ReasoningShape]) -> str:
    """A stored message's text without a reasoning block at its start (chats written before
    reasoning was parsed, or imported with SillyTavern's auto-parse off)."""
    if not text[:256].lstrip().startswith(_marks(shapes)):  # a block counts only at the start
        return text
    splitter = ReasoningSplitter(shapes)
    splitter.feed(text)
    splitter.finish()
    return splitter.text


def inline_stripper(fmt: ReasoningFormat) -> Callable[[str], str]:
    """What `prompt_texts` does to one reply's text before the last-N rule: an inline block at
    its start removed (when the preset parses reasoning). A caller may keep its results per
    message and pass `stripped` to `prompt_texts`."""
    shapes = shapes_for(fmt)
    marks = _marks(shapes)

    def strip(text: str) -> str:
        if fmt.parse and text[:256].lstrip().startswith(marks):
            return strip_block(text, shapes)
        return text

    return strip


def prompt_texts(messages: Sequence[ChatMessage], texts: MutableMapping[str, str], fmt: ReasoningFormat, *,
                 continuing: bool = False, stripped: int = 0) -> None:
    """Reasoning in the prompt, in place of `texts` (message id → text sent): inline blocks are
    removed, stored reasoning stays out except for the last `fmt.add_to_prompt` replies, and a
    continued reply carries its own (an unfinished block is left open, so the model goes on
    thinking), as SillyTavern does. `stripped`: the first messages whose texts already went
    through `inline_stripper` (a cache's), so only the newer ones are walked."""
    strip = inline_stripper(fmt)
    added = 0
    n = len(messages)
    for i in range(n - 1, -1, -1):
        own = continuing and i == n - 1
        done = i < stripped
        if done and added >= fmt.add_to_prompt and not own:
            break
        m = messages[i]
        if m.role != "assistant":
            continue
        reasoning = m.reasoning if own or added < fmt.add_to_prompt else ""
        if done and not reasoning:
            continue  # stripped already and nothing to add: its text stands, unread
        sent = texts[m.id]
        text = sent if done else strip(sent)
        if reasoning:
            text = format_reasoning(fmt, reasoning, text if (text or not own) else None)
            added += 1
        if text is not sent:
            texts[m.id] = text


def thinking_for(chat_metadata: dict[str, object] | None, fmt: ReasoningFormat) -> bool | None:
    """This chat's thinking switch: the chat's own setting, else the preset's (None: leave the
    model's default)."""
    value = (chat_metadata or {}).get(THINKING_KEY)
    return value if isinstance(value, bool) else fmt.thinking


def thinking_prefill(fmt: ReasoningFormat, thinking: bool | None, header: str = "") -> str:
    """Text written after the generation header (`header`) for this switch: it opens the block,
    or writes an empty one so the model skips it."""
    if thinking is None:
        return ""
    opened = shape_opened_by(header, shapes_for(fmt)[:1]) is not None
    if thinking:
        if fmt.start_prefill is not None:
            return fmt.start_prefill
        return "" if opened or fmt.on_switch else fmt.prefix
    if fmt.off_prefill is not None:
        return fmt.off_prefill
    if fmt.off_switch:
        return ""
    return (fmt.suffix if opened else fmt.prefix + fmt.suffix) + fmt.separator


def thinking_switch(fmt: ReasoningFormat, thinking: bool | None) -> str:
    """Text appended to the newest user message for this switch (Qwen3's `/think`, `/no_think`)."""
    if thinking is None:
        return ""
    return fmt.on_switch if thinking else fmt.off_switch


def prepare_prompt(messages: Sequence[ChatMessage], texts: MutableMapping[str, str], fmt: ReasoningFormat,
                   chat_metadata: dict[str, object] | None, *, mode: str = "normal",
                   header: str = "", stripped: int = 0) -> str:
    """Every reasoning rule of a prompt in one place: `prompt_texts`, then this chat's thinking
    switch on the newest user message. Returns the prefill to write after the generation header
    (`header`, the template's own); `stripped` as in `prompt_texts`."""
    prompt_texts(messages, texts, fmt, continuing=mode == "continue", stripped=stripped)
    if mode != "normal":
        return ""
    thinking = thinking_for(chat_metadata, fmt)
    switch = thinking_switch(fmt, thinking)
    if switch:
        last_user = next((m for m in reversed(messages) if m.role == "user"), None)
        if last_user is not None:
            texts[last_user.id] = texts[last_user.id] + switch
    return thinking_prefill(fmt, thinking, header)


def closing_text(fmt: ReasoningFormat, shape: ReasoningShape | None) -> str:
    """What closes a block the budget cut short, written into the prompt before the reply: the
    preset's suffix and separator for its own shape, else the shape's closer and reply opener."""
    if shape is None or shape is shapes_for(fmt)[0]:
        return fmt.suffix + fmt.separator
    return shape.closers[0] + (shape.reply_markers[0] if shape.reply_markers else "\n\n")


def split_stops(stops: Sequence[str], shapes: Sequence[ReasoningShape]) -> tuple[list[str], list[str]]:
    """Stop strings for the backend, and those held back to the reply text: a stop string found
    inside a reasoning marker (gpt-oss's `<|end|>`, `<|start|>`) must not end the reply while
    the model is still reasoning."""
    markers = [m for s in shapes for m in (s.opener, *s.closers, *s.reply_markers)]
    held = [s for s in stops if any(s in m for m in markers)]
    return [s for s in stops if s not in held], held


TEMPLATE_SWITCHES = ("enable_thinking", "thinking")
"""Variables model templates read to switch thinking: Qwen3, GLM-4.5 and Gemma 4 read
`enable_thinking`; DeepSeek-V3.1 and Granite read `thinking`."""


def template_switch(source: str) -> str | None:
    """The variable a model's own Jinja chat template reads to switch thinking; None when it
    has none (then a prefill or a `/no_think` switch does it)."""
    import re

    return next((n for n in TEMPLATE_SWITCHES if re.search(rf"\b{n}\b", source)), None)


def template_context(source: str, thinking: bool | None) -> dict[str, bool]:
    """Variables to render a Jinja chat template with for this switch ({}: its own default)."""
    name = template_switch(source)
    return {name: thinking} if name is not None and thinking is not None else {}


def switch_prefills(source: str, render: Callable[[dict[str, bool]], str]) -> dict[str, str]:
    """The prefills a model's Jinja template writes itself with its thinking switch: what its
    generation prompt gains with the switch off (Qwen3: `<think>\\n\\n</think>\\n\\n`) or on,
    so an instruct template made from it switches thinking exactly as the model's own does.
    `render(variables)` renders a short conversation with the generation prompt."""
    name = template_switch(source)
    if name is None:
        return {}
    from .errors import TemplateError

    out: dict[str, str] = {}
    try:
        base = render({})
        for key, value in (("off_prefill", False), ("start_prefill", True)):
            switched = render({name: value})
            if switched.startswith(base):
                out[key] = switched[len(base):]
    except TemplateError:
        return {}
    return out
