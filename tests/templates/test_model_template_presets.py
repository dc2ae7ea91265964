"""A model's own template wherever a preset goes: `--preset FILE.jinja|gguf:MODEL` for render and
generate, and a bundle's `instruct:`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rp_context.cli import main
from rp_context.errors import RPContextError, TemplateError
from rp_context.pipeline import load_setup
from rp_context.presets import get_family
from rp_context.templates import InstructTemplate, JinjaTemplate, Message


def _chat(tmp_path: Path) -> Path:
    chat = tmp_path / "c.jsonl"
    lines = [
        {"user_name": "Tess", "character_name": "Wren Halloway"},
        {"name": "Tess", "is_user": True, "mes": "Where does the road go?", "send_date": "", "extra": {}},
    ]
    chat.write_text("\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    return chat


def test_jinja_file_as_preset_uses_the_family_that_renders_it(templates_ref: Path) -> None:
    setup = load_setup(str(templates_ref / "llama-3-instruct.jinja"))
    assert setup.instruct == get_family("llama3")


def test_jinja_file_read_as_role_markers(templates_ref: Path) -> None:
    path = templates_ref / "qwen2.5-instruct.jinja"
    setup = load_setup(str(path))
    t = setup.instruct
    assert isinstance(t, InstructTemplate) and "Qwen" in (t.implicit_system or "")
    conv = [Message("user", "hi"), Message("assistant", "yo"), Message("user", "and?")]
    assert t.render(conv).text == JinjaTemplate.from_file(path).render(conv).text


def test_template_no_instruct_template_renders_is_refused_with_the_reason(templates_ref: Path) -> None:
    with pytest.raises(TemplateError, match="mistral-v3-tekken is llama.cpp's nearest builtin"):
        load_setup(str(templates_ref / "mistral-v3-tekken-nemo-2407.jinja"))


def test_bundle_with_a_jinja_instruct(tmp_path: Path, templates_ref: Path) -> None:
    bundle = tmp_path / "mine.yaml"
    bundle.write_text(
        "kind: bundle\nversion: 1\nname: mine\n"
        f"instruct: {templates_ref / 'gemma-3-it.jinja'}\n"
        "context: default\nsysprompt: roleplay\nsampler: balanced\n",
        encoding="utf-8",
    )
    assert load_setup(str(bundle)).instruct == get_family("gemma3")


def test_render_cli_with_a_jinja_preset(tmp_path: Path, templates_ref: Path, capsys: pytest.CaptureFixture[str]) -> None:
    chat = _chat(tmp_path)
    args = ["render", "--card", "cards/wren-halloway.json", "--chat", str(chat), "--estimate"]
    assert main([*args, "--preset", str(templates_ref / "llama-3-instruct.jinja")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("<|start_header_id|>system<|end_header_id|>\n\n")
    assert "Where does the road go?<|eot_id|>" in out
    assert main([*args, "--preset", str(templates_ref / "mistral-v3-instruct.jinja")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot be used as an instruct template" in err


def test_missing_jinja_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RPContextError, match="cannot read template"):
        load_setup(str(tmp_path / "nope.jinja"))


@pytest.mark.model
def test_gguf_preset_is_the_models_template(smollm_path: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    setup = load_setup(f"gguf:{smollm_path}")
    assert "SmolLM" in (setup.instruct.implicit_system or "")
    chat = _chat(tmp_path)
    code = main(["render", "--card", "cards/wren-halloway.json", "--chat", str(chat),
                 "--preset", f"gguf:{smollm_path}", "--model", str(smollm_path)])
    assert code == 0
    out = capsys.readouterr().out
    # the render starts with the card's system prompt (ours), so SmolLM2's default is not added
    assert out.startswith("<|im_start|>system\n") and "SmolLM" not in out
    assert out.endswith("<|im_start|>assistant\n")


@pytest.mark.model
def test_gguf_alone_is_the_model_in_use(gemma_path: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """`--preset gguf:` takes --model's template (gemma3-270m has none), not the default model's."""
    chat = _chat(tmp_path)
    args = ["render", "--card", "cards/wren-halloway.json", "--chat", str(chat), "--model", str(gemma_path)]
    assert main([*args, "--preset", "gguf:"]) == 2
    err = capsys.readouterr().err
    assert gemma_path.name in err and "no embedded chat template" in err
