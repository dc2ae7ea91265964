"""The streaming splitter: reasoning and text apart, whatever the chunking of the reply."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rp_context.reasoning import (
    GEMMA4,
    GPT_OSS,
    KNOWN_SHAPES,
    THINK,
    ReasoningFormat,
    ReasoningSplitter,
    shape_opened_by,
    shapes_for,
    split_reasoning,
)

REPLIES = [
    # (reply, inside, reasoning, text)
    ("<think>\nShe is wary.\n</think>\n\nHello there.", False, "She is wary.", "Hello there."),
    ("  <think>plan</think>Hi", False, "plan", "Hi"),
    ("No thoughts, just <think> in a story.", False, "", "No thoughts, just <think> in a story."),
    ("<|channel|>analysis<|message|>User greets.<|end|><|start|>assistant<|channel|>final"
     "<|message|>Hey!", False, "User greets.", "Hey!"),
    ("<|channel>thought\nA plan.\n<channel|>Sure thing.", False, "A plan.", "Sure thing."),
    ("Okay, the user wants a poem.\n</think>\n\nRoses are red.", True,
     "Okay, the user wants a poem.", "Roses are red."),
    ("<think>never closed because the reply was cut", False,
     "never closed because the reply was cut", ""),
    ("<think></think>Empty block.", False, "", "Empty block."),
    ("<thi", False, "", "<thi"),
    ("<|channel|>final<|message|>Straight to the answer.", False, "", "Straight to the answer."),
]


def _stream(reply: str, cuts: list[int], inside: bool) -> tuple[str, str, ReasoningSplitter]:
    shapes = KNOWN_SHAPES
    splitter = ReasoningSplitter(shapes, inside=THINK if inside else None)
    bounds = sorted({c for c in cuts if 0 < c < len(reply)})
    pieces = [reply[a:b] for a, b in zip([0, *bounds], [*bounds, len(reply)], strict=True)]
    r, t = [], []
    for piece in pieces:
        d = splitter.feed(piece)
        r.append(d.reasoning)
        t.append(d.text)
    d = splitter.finish()
    r.append(d.reasoning)
    t.append(d.text)
    return "".join(r), "".join(t), splitter


@pytest.mark.parametrize(("reply", "inside", "reasoning", "text"), REPLIES)
def test_every_cut_gives_the_same_split(reply: str, inside: bool, reasoning: str, text: str) -> None:
    """Cut the reply at every single position (and char by char): the split never changes."""
    for cut in range(len(reply) + 1):
        r, t, s = _stream(reply, [cut], inside)
        assert (r.strip(), t.strip()) == (reasoning, text), f"cut at {cut}"
        assert s.result().reasoning == reasoning
    r, t, _ = _stream(reply, list(range(len(reply))), inside)
    assert (r.strip(), t.strip()) == (reasoning, text)


@settings(max_examples=200, deadline=None)
@given(
    reasoning=st.text(st.characters(blacklist_characters="<>|"), max_size=30),
    text=st.text(max_size=30),
    cuts=st.lists(st.integers(0, 80), max_size=12),
    shape=st.sampled_from(KNOWN_SHAPES),
)
def test_random_replies_and_random_cuts(reasoning: str, text: str, cuts: list[int], shape) -> None:
    """Any reasoning and any text, cut anywhere: streamed pieces add up to the whole split."""
    reply = f"{shape.opener}{reasoning}{shape.closers[0]}{text}"
    whole = split_reasoning(reply)
    r, t, splitter = _stream(reply, cuts, inside=False)
    assert whole.reasoning == reasoning.strip()
    assert whole.text.strip() == text.strip() or text.lstrip().startswith("<|")
    assert r.strip() == whole.reasoning and t == whole.text
    assert splitter.shape == shape


def test_text_released_as_soon_as_certain() -> None:
    """Nothing shown is taken back, and text is not held longer than a marker could need."""
    s = ReasoningSplitter()
    assert s.feed("<") == ("", "")  # may be `<think>`
    assert s.feed("b>bold") == ("", "<b>bold")
    s = ReasoningSplitter()
    assert s.feed("<think>") == ("", "")
    assert s.feed("Plan A</th") == ("Plan A", "")  # `</th` could be the closer: held
    assert s.feed("ese are notes") == ("</these are notes", "")
    assert s.in_reasoning


def test_unclosed_block_is_reported_unfinished() -> None:
    s = ReasoningSplitter(inside=THINK)
    s.feed("still thinking about ")
    s.feed("it")
    s.finish()
    res = s.result()
    assert res.unfinished and res.reasoning == "still thinking about it" and res.text == ""


def test_budget_counts_reasoning_and_close_ends_the_block() -> None:
    s = ReasoningSplitter(budget=3)
    for piece in ["<think>", "one", " two"]:
        s.feed(piece)
        assert not s.over_budget
    s.feed(" three</")  # the held `</` goes to the reasoning on close
    assert s.over_budget
    assert s.close() == ("</", "")
    assert not s.in_reasoning and s.forced_close
    assert s.feed("\n\nThe answer.") == ("", "The answer.")
    s.finish()
    assert s.result() == ("one two three</", "The answer.", False, "think")


def test_budget_with_an_exact_counter() -> None:
    words = ReasoningSplitter(inside=THINK, budget=4, count=lambda t: len(t.split()))
    words.feed("a b c")
    assert not words.over_budget
    words.feed(" d")
    assert words.over_budget


def test_disabled_parsing_keeps_everything_as_text() -> None:
    fmt = ReasoningFormat(parse=False)
    res = split_reasoning("<think>x</think>y", fmt)
    assert res == ("", "<think>x</think>y", False, None)


def test_preset_shape_comes_first_and_custom_tags_work() -> None:
    fmt = ReasoningFormat(prefix="<reasoning>\n", suffix="\n</reasoning>")
    shapes = shapes_for(fmt)
    assert shapes[0].opener == "<reasoning>" and shapes[0].closers == ("</reasoning>",)
    assert {s.name for s in shapes[1:]} == {"think", "gpt-oss", "gemma4"}
    assert split_reasoning("<reasoning>hm</reasoning> Yes.", fmt)[:2] == ("hm", "Yes.")
    # The DeepSeek default is the known `<think>` shape, not a copy of it.
    assert shapes_for(ReasoningFormat())[0] is THINK


def test_orphan_closer_when_the_template_opened_the_block_unseen() -> None:
    res = split_reasoning("The user says hi.\n</think>\n\nHi!")
    assert res[:2] == ("The user says hi.", "Hi!")
    # a closer after an opener in the text is not an orphan
    assert split_reasoning("Story: <think> and </think>").reasoning == ""


@pytest.mark.parametrize(("tail", "shape"), [
    ("<|im_start|>assistant\n<think>\n", THINK),
    ("<|start|>assistant<|channel|>analysis<|message|>", GPT_OSS),
    ("<|turn>model\n<|channel>thought\n", GEMMA4),
    ("<|im_start|>assistant\n", None),
    ("<think>\n\n</think>\n\n", None),
])
def test_prompt_that_opens_the_block(tail: str, shape) -> None:
    assert shape_opened_by(tail, KNOWN_SHAPES) == shape


QWEN3_LIKE = (  # the shape of Qwen3's template around its switch
    "{%- for m in messages %}{{- '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}"
    "{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}"
    "{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}{%- endif %}"
)


def test_jinja_templates_switch_thinking_with_their_own_variable() -> None:
    from rp_context.reasoning import template_context, template_switch
    from rp_context.templates import JinjaTemplate

    assert template_switch(QWEN3_LIKE) == "enable_thinking"
    assert template_switch("{{ messages }}") is None
    msgs = [{"role": "user", "content": "Hi"}]
    off = JinjaTemplate(QWEN3_LIKE, extra_context=template_context(QWEN3_LIKE, False))
    on = JinjaTemplate(QWEN3_LIKE, extra_context=template_context(QWEN3_LIKE, True))
    default = JinjaTemplate(QWEN3_LIKE, extra_context=template_context(QWEN3_LIKE, None))
    assert off.render_text(msgs).endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    assert on.render_text(msgs).endswith("<|im_start|>assistant\n")
    assert default.render_text(msgs) == on.render_text(msgs)


def test_thinking_prefills_follow_the_preset_or_its_own_block() -> None:
    from rp_context.reasoning import thinking_prefill

    fmt = ReasoningFormat()
    assert thinking_prefill(fmt, None) == ""
    assert thinking_prefill(fmt, True) == "<think>\n"
    assert thinking_prefill(fmt, False) == "<think>\n\n</think>\n\n"  # Qwen3's empty block
    # a header that opens the block itself (an R1-style family): on adds nothing, off closes it
    assert thinking_prefill(fmt, True, "<|Assistant|><think>\n") == ""
    assert thinking_prefill(fmt, False, "<|Assistant|><think>\n") == "\n</think>\n\n"
    # a switch in the user's message instead of a prefill; explicit prefills win
    assert thinking_prefill(ReasoningFormat(off_switch=" /no_think"), False) == ""
    assert thinking_prefill(ReasoningFormat(start_prefill=""), True) == ""
    gemma4 = ReasoningFormat(prefix="<|channel>thought\n", suffix="<channel|>", separator="")
    assert thinking_prefill(gemma4, False) == "<|channel>thought\n<channel|>"


def test_strip_block_only_at_the_start() -> None:
    from rp_context.reasoning import strip_block

    assert strip_block("  <think>x</think>\n\nHi", KNOWN_SHAPES) == "Hi"
    assert strip_block("<|channel|>final<|message|>Yo", KNOWN_SHAPES) == "Yo"
    story = "She wrote <think>later</think> in the margin."
    assert strip_block(story, KNOWN_SHAPES) is story
