"""Detection never guesses wrong: over every reference template and every Jinja source in
llama.cpp's own template tests, the template detection picks renders that Jinja template byte for
byte on random conversations (a family, or the model's own template)."""

from __future__ import annotations

import json
import os
import random
import zlib
from pathlib import Path

import pytest
from _convgen import conversations, random_text

from rp_context.detect import detect_family, llamacpp_detect
from rp_context.errors import TemplateError
from rp_context.templates import InstructTemplate, JinjaTemplate, Message
from rp_context.templates.induce import writes_bos

REF = (Path(os.environ["RP_CONTEXT_SHARED"]) if os.environ.get("RP_CONTEXT_SHARED")
       else Path(__file__).resolve().parents[3] / "shared") / "reference" / "templates"


def _reference_sources() -> list[tuple[str, str, str, str]]:
    """(id, source, bos, eos) for every reference .jinja and every llama.cpp test template."""
    out: list[tuple[str, str, str, str]] = []
    golden = json.loads((REF / "golden" / "hf_jinja_vs_llamacpp_autodetect.json").read_text())
    for path in sorted(REF.glob("*.jinja")):
        entry = golden.get(path.stem, {})
        out.append((path.stem, path.read_text(), entry.get("bos_token", "<s>"), entry.get("eos_token", "</s>")))
    cases = json.loads((REF / "golden" / "llamacpp_test_chat_template_cases.json").read_text())["cases"]
    for case in cases:
        out.append((f"llama.cpp:{case['name']}", case["template_str"], case.get("bos_token", ""),
                    case.get("eos_token", "")))
    return out


SOURCES = _reference_sources()


def _roleplay_conversations(seed: int) -> list[list[Message]]:
    """Random conversations of the shape rp-context sends: an optional system prompt, turns from
    the user, and in half of them a system note before the newest user message (lore, author's
    note). Random text: unicode, padding, empty messages, long ones."""
    out: list[list[Message]] = []
    rng = random.Random(seed)
    for conv in conversations(seed, 120, alternating=True):
        # the assembler writes a system turn only when it has text
        conv = [m for m in conv if m.role != "system" or m.content]
        users = [i for i, m in enumerate(conv) if m.role == "user"]
        if len(users) > 1 and rng.random() < 0.5:
            conv = [*conv[: users[-1]], Message("system", random_text(rng)), *conv[users[-1] :]]
        out.append(conv)
    return out


def _random_equal(template: object, jinja: JinjaTemplate, seed: int) -> int:
    """Compare where the Jinja template renders every message's text; return how many renders."""
    bos = writes_bos(jinja)
    compared = 0
    for conv in _roleplay_conversations(seed):
        for agp in (True, False):
            try:
                expected = jinja.render(conv, agp).text
            except TemplateError:
                continue
            if isinstance(template, InstructTemplate):
                got = template.render(conv, agp, bos=bos).text
            else:
                got = template.render(conv, agp).text  # type: ignore[attr-defined]
            assert got == expected, (getattr(template, "name", "?"), agp, conv)
            compared += 1
    return compared


def test_reference_corpus_is_there() -> None:
    assert len(SOURCES) >= 50


@pytest.mark.parametrize("source", SOURCES, ids=[s[0] for s in SOURCES])
def test_detected_template_renders_the_model_template_exactly(source: tuple[str, str, str, str]) -> None:
    name, text, bos, eos = source
    guess = detect_family(text, bos_token=bos, eos_token=eos, template_name=name)
    assert guess.warning is None and guess.reason
    jinja = JinjaTemplate(text, bos_token=bos, eos_token=eos, name=name)
    if guess.source == "chat_template":
        assert isinstance(guess.template, InstructTemplate) and guess.template.name == guess.family
    else:
        assert guess.source == "model_template" and guess.family == "jinja"
    # what the model gets is what its own template makes, on conversations the probes never saw
    compared = _random_equal(guess.template, jinja, zlib.crc32(name.encode()))
    # (a template that renders none of them, GigaChat's without its special-token list, is used
    # as it is: it raises for the user instead of being replaced by a guess)
    assert compared > 0 or isinstance(guess.template, JinjaTemplate)


@pytest.mark.parametrize(
    ("stem", "expected", "nearest"),
    [
        ("mistral-v1-instruct-sys", "mistral-v1", "mistral-v1"),
        ("mistral-v7-large-2411", "mistral-v7", "mistral-v7"),
        ("gemma-3-it", "gemma3", "gemma3"),
        ("llama-3-instruct", "llama3", "llama3"),
        # the system prompt goes into the last user turn: no family does that, llama.cpp's
        # nearest builtin is v3-tekken (not v3, which adds a space after [INST])
        ("mistral-v3-tekken-nemo-2407", "jinja", "mistral-v3-tekken"),
        ("mistral-v0.1-instruct", "jinja", "llama2-nosys"),
    ],
)
def test_known_templates(stem: str, expected: str, nearest: str) -> None:
    _, text, bos, eos = next(s for s in SOURCES if s[0] == stem)
    guess = detect_family(text, bos_token=bos, eos_token=eos)
    assert (guess.family, guess.nearest) == (expected, nearest)


def test_nemo_is_never_given_mistral_v3_spacing() -> None:
    guess = detect_family((REF / "mistral-v3-tekken-nemo-2407.jinja").read_text(), bos_token="<s>", eos_token="</s>")
    text = guess.template.render([Message("user", "Is it?")]).text
    assert "[INST]Is it?[/INST]" in text and "[INST] Is" not in text


def test_smollm2_default_system_prompt_is_read_from_its_template() -> None:
    guess = detect_family((REF / "smollm2-instruct.jinja").read_text(), bos_token="<|im_start|>",
                          eos_token="<|im_end|>")
    assert guess.source == "model_template" and isinstance(guess.template, InstructTemplate)
    assert "SmolLM" in (guess.template.implicit_system or "")
    assert guess.template.render([Message("user", "hi")]).text.startswith("<|im_start|>system\nYou are")
    # with a system prompt of our own, none is added
    text = guess.template.render([Message("system", "S"), Message("user", "hi")]).text
    assert text.startswith("<|im_start|>system\nS<|im_end|>") and "SmolLM" not in text


def test_broken_template_is_a_warned_guess() -> None:
    guess = detect_family("{% for m in messages %}<|im_start|>{{ m.content }", bos_token="", eos_token="")
    assert guess.source == "fallback" and guess.warning and "syntax" in guess.warning


def test_no_template_guesses_with_a_warning() -> None:
    guess = detect_family(None, "gemma3", "Gemma 3 270m")
    assert guess.family == "gemma" and guess.source == "architecture" and guess.warning


@pytest.mark.model
def test_llamacpp_detection_is_llamacpps() -> None:
    """Our port of llama.cpp's detection names the builtin that produced llama.cpp's own expected
    output for each test template."""
    from rp_context.templates.llamacpp import llamacpp_apply_template

    data = json.loads((REF / "golden" / "llamacpp_test_chat_template_cases.json").read_text())
    conv = [Message(r, c) for r, c in data["_meta"]["conversation"]]
    checked = 0
    for case in data["cases"]:
        name = llamacpp_detect(case["template_str"])
        assert name is not None, case["name"]
        if "(tool call)" in case["name"]:  # tool messages were appended: our part is the start
            assert case["expected_output"].startswith(llamacpp_apply_template(name, conv, False))
        else:
            assert llamacpp_apply_template(name, conv, True) == case["expected_output"], case["name"]
        checked += 1
    assert checked >= 30
