"""The HF-style Jinja renderer against golden renders, and against our families on random
conversations wherever the model's own template and our family agree by design."""

from __future__ import annotations

import zlib
from datetime import datetime
from pathlib import Path

import pytest
from _convgen import conversations

from rp_context.errors import TemplateError
from rp_context.presets import get_family
from rp_context.templates import JinjaTemplate, Message, c_trim

GOLDEN_NOW = datetime(2025, 1, 26)  # the date the golden renders were made with
N = 200


def _jinja(templates_ref: Path, stem: str, bos: str = "<s>", eos: str = "</s>") -> JinjaTemplate:
    return JinjaTemplate.from_file(templates_ref / f"{stem}.jinja", bos_token=bos, eos_token=eos, now=GOLDEN_NOW)


def test_golden_renders(templates_ref: Path, golden_hf: dict) -> None:
    convs = golden_hf["_meta"]["conversations"]
    checked = errors = lost = 0
    for stem, entry in golden_hf.items():
        if stem == "_meta":
            continue
        t = _jinja(templates_ref, stem, entry["bos_token"], entry["eos_token"])
        for key, expected in entry["render"].items():
            name, agp = key.split("|")
            msgs = convs[name]
            if isinstance(expected, dict):
                with pytest.raises(TemplateError):
                    t.render(msgs, agp == "agp=1")
                errors += 1
            elif any(m["content"].strip() not in expected for m in msgs):
                # the model's own template lost a message's text (Mistral v3 drops the system
                # prompt when the chat ends with the assistant): rendered as is, but never silently
                assert t.render_text(msgs, agp == "agp=1") == expected
                with pytest.raises(TemplateError, match=rf"{stem}: the template drops message \d"):
                    t.render(msgs, agp == "agp=1")
                lost += 1
            else:
                rendered = t.render(msgs, agp == "agp=1")
                assert rendered.text == expected, (stem, key)
                assert rendered.text == t.render_text(msgs, agp == "agp=1")
            checked += 1
    assert checked >= 150 and errors >= 5 and lost >= 4


def test_content_parts_are_the_messages(templates_ref: Path) -> None:
    t = _jinja(templates_ref, "gemma-3-it", "<bos>", "<eos>")
    msgs = [Message("system", "Be Wren."), Message("user", "  <end_of_turn> hi  "), Message("assistant", "ok")]
    r = t.render(msgs)
    assert r.parts[0].text == "<bos>" and r.parts[0].special
    content = [(p.text, p.source) for p in r.parts if not p.special]
    assert content == [("Be Wren.", 0), ("<end_of_turn> hi", 1), ("ok", 2)]
    assert all("<end_of_turn> hi" not in p.text for p in r.parts if p.special)


def test_raise_exception_and_sandbox(templates_ref: Path) -> None:
    t = _jinja(templates_ref, "gemma-2-it", "<bos>", "<eos>")
    with pytest.raises(TemplateError, match="System role not supported"):
        t.render([Message("system", "x"), Message("user", "y")])
    evil = JinjaTemplate("{{ messages.__class__.__mro__[1].__subclasses__() }}")
    with pytest.raises(TemplateError):
        evil.render([Message("user", "x")])
    assert JinjaTemplate("{{ strftime_now('%Y') }}", now=GOLDEN_NOW).render_text([]) == "2025"  # from the fixed clock
    assert JinjaTemplate("{{ messages|tojson }}").render_text([Message("user", "✓")]) == '[{"role": "user", "content": "✓"}]'
    loop = "{% for m in messages %}{% if loop.index > 1 %}{% break %}{% endif %}{{ m.content }}{% endfor %}"
    assert JinjaTemplate(loop).render_text([Message("user", "a"), Message("user", "b")]) == "a"


def _no_empty_system(conv: list[Message]) -> list[Message]:
    return [m for m in conv if not (m.role == "system" and not m.content)]


def _trimmed_system(conv: list[Message]) -> list[Message]:
    out = [Message(m.role, c_trim(m.content)) if m.role == "system" else m for m in conv]
    return [m for m in out if not (m.role == "system" and not m.content)]


def _no_system(conv: list[Message]) -> list[Message]:
    return [m for m in conv if m.role != "system"]


# family, jinja stem, bos, eos, alternating?, agp values, conversation filter, family renders BOS
CASES = [
    ("chatml", "chatml", "<s>", "<|im_end|>", False, (True, False), None, False),
    ("llama3", "llama-3-instruct", "<|begin_of_text|>", "<|eot_id|>", False, (True, False), None, True),
    ("gemma", "gemma-3-it", "<bos>", "<eos>", True, (True, False), _trimmed_system, True),
    ("mistral-v7", "mistral-v7-large-2411", "<s>", "</s>", False, (True, False), None, True),
    ("mistral-v1", "mistral-v1-instruct-sys", "<s>", "</s>", True, (True, False), None, True),
    ("mistral-v3", "mistral-v3-instruct", "<s>", "</s>", True, (True, False), _no_system, True),
    ("mistral-v3-tekken", "mistral-v3-tekken-nemo-2407", "<s>", "</s>", True, (True, False), _no_system, True),
    ("phi3", "phi-3.5-mini-instruct", "<s>", "<|endoftext|>", False, (True,), _no_empty_system, False),
    ("zephyr", "zephyr", "<s>", "<|endoftext|>", False, (True, False), None, False),
    ("vicuna", "vicuna-1.1", "<s>", "</s>", False, (True, False), None, False),
    ("alpaca", "alpaca.flat", "<s>", "</s>", True, (True, False), None, True),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_family_equals_model_template(templates_ref: Path, case: tuple) -> None:
    family, stem, bos, eos, alternating, agps, adapt, with_bos = case
    ours = get_family(family)
    jinja = _jinja(templates_ref, stem, bos, eos)
    seen = 0
    for conv in conversations(zlib.crc32(stem.encode()), N, alternating=alternating):
        conv = adapt(conv) if adapt else conv
        if not conv:
            continue
        for agp in agps:
            expected = jinja.render(conv, agp).text
            assert ours.render(conv, agp, bos=with_bos).text == expected, (family, agp, conv)
            seen += 1
    assert seen >= N


def test_gguf_template_matches_golden(smollm_path: Path, golden_hf: dict) -> None:
    t = JinjaTemplate.from_gguf(smollm_path)
    assert t.bos_token == "<|im_start|>" and t.eos_token == "<|im_end|>"
    convs = golden_hf["_meta"]["conversations"]
    for key, expected in golden_hf["smollm2-instruct"]["render"].items():
        name, agp = key.split("|")
        assert t.render(convs[name], agp == "agp=1").text == expected


def test_model_without_template_has_no_jinja(gemma_path: Path) -> None:
    with pytest.raises(TemplateError, match="no embedded chat template"):
        JinjaTemplate.from_gguf(gemma_path)


PARTS_ONLY = (
    "{% for m in messages %}<|{{ m.role }}|>{% for p in m.content %}{% if p.type == 'text' %}"
    "{{ p.text }}{% endif %}{% endfor %}<end>\n{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def test_content_as_parts_for_templates_that_read_parts() -> None:
    """A template that iterates content parts (SmolVLM, Qwen2-VL) would turn string content into
    nothing; it gets the content as [{"type": "text", ...}], as llama.cpp passes it."""
    t = JinjaTemplate(PARTS_ONLY, name="parts-only")
    assert t.typed_content
    msgs = [Message("system", "Be Wren."), Message("user", "hi <end>"), Message("assistant", "ok")]
    r = t.render(msgs)
    assert r.text == "<|system|>Be Wren.<end>\n<|user|>hi <end><end>\n<|assistant|>ok<end>\n<|assistant|>"
    assert [(p.text, p.source) for p in r.parts if not p.special] == [("Be Wren.", 0), ("hi <end>", 1), ("ok", 2)]
    assert not JinjaTemplate("{% for m in messages %}{{ m.content }}{% endfor %}").typed_content


def test_a_render_that_loses_text_raises() -> None:
    drops_assistant = JinjaTemplate(
        "{% for m in messages %}{% if m.role != 'assistant' %}[{{ m.role }}]{{ m.content }}{% endif %}{% endfor %}",
        name="drops.jinja",
    )
    msgs = [Message("user", "hello"), Message("assistant", "  a long reply that vanishes  "), Message("user", "x")]
    with pytest.raises(TemplateError, match=r"drops\.jinja: the template drops message 1 \(assistant: 'a long reply"):
        drops_assistant.render(msgs)
    # blank text is not text: nothing to lose
    assert drops_assistant.render([Message("user", "a"), Message("assistant", " ")]).text == "[user]a"
