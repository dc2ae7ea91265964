"""Reasoning settings in instruct presets: YAML fields, SillyTavern reasoning templates and Master
Export files imported, unknown keys refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rp_context.cli import main
from rp_context.errors import PresetError
from rp_context.presets import import_sillytavern, load_preset, read_preset
from rp_context.presets.sillytavern import export_sillytavern, reasoning_from_sillytavern
from rp_context.reasoning import ReasoningFormat

DEEPSEEK = {"name": "DeepSeek", "prefix": "<think>\n", "suffix": "\n</think>", "separator": "\n\n"}
GEMMA4 = {"name": "Gemma 4", "prefix": "<|channel>thought\n", "suffix": "\n<channel|>",
          "separator": "\n\n"}


def test_reasoning_template_and_settings_map_to_the_block() -> None:
    fmt = reasoning_from_sillytavern({**GEMMA4, "auto_parse": True, "add_to_prompts": True,
                                      "max_additions": 2, "auto_expand": False})
    assert (fmt.prefix, fmt.suffix, fmt.separator) == (GEMMA4["prefix"], GEMMA4["suffix"], "\n\n")
    assert fmt.parse is True and fmt.add_to_prompt == 2
    off = reasoning_from_sillytavern({**DEEPSEEK, "add_to_prompts": False, "max_additions": 5,
                                      "auto_parse": False})
    assert off.add_to_prompt == 0 and off.parse is False
    with pytest.raises(PresetError, match="max_additions|add_to_prompt"):
        reasoning_from_sillytavern({**DEEPSEEK, "add_to_prompts": True, "max_additions": -1})


def test_master_export_brings_the_reasoning_into_the_instruct_preset(reference_dir: Path) -> None:
    instruct = json.loads((reference_dir / "sillytavern" / "instruct" / "ChatML.json").read_text())
    master = {"instruct": instruct, "reasoning": {**DEEPSEEK, "auto_parse": True,
                                                  "add_to_prompts": True, "max_additions": 1}}
    preset = import_sillytavern(master)
    assert preset.input_sequence == instruct["input_sequence"]
    assert preset.reasoning.add_to_prompt == 1 and preset.reasoning.prefix == "<think>\n"
    # the reasoning block is ours: the SillyTavern instruct export has no such key
    assert "reasoning" not in export_sillytavern(preset)


def test_a_lone_reasoning_template_says_how_to_import_it() -> None:
    with pytest.raises(PresetError, match="--reasoning"):
        import_sillytavern(DEEPSEEK)


def test_cli_import_with_reasoning_and_load_back(reference_dir: Path, tmp_path: Path, capsys) -> None:
    reasoning = tmp_path / "Gemma 4.json"
    reasoning.write_text(json.dumps(GEMMA4))
    out = tmp_path / "chatml-think.yaml"
    code = main(["preset", "import", str(reference_dir / "sillytavern" / "instruct" / "ChatML.json"),
                 "--reasoning", str(reasoning), "-o", str(out)])
    assert code == 0
    text = out.read_text()
    assert "reasoning:" in text and "<|channel>thought" in text
    loaded = read_preset(out)
    assert loaded.reasoning.prefix == GEMMA4["prefix"] and loaded.reasoning.suffix == GEMMA4["suffix"]


def test_cli_reasoning_needs_an_instruct_preset(reference_dir: Path, tmp_path: Path, capsys) -> None:
    reasoning = tmp_path / "r.json"
    reasoning.write_text(json.dumps(DEEPSEEK))
    code = main(["preset", "import", str(reference_dir / "sillytavern" / "context" / "ChatML.json"),
                 "--reasoning", str(reasoning), "-o", str(tmp_path / "x.yaml")])
    assert code == 2 and not (tmp_path / "x.yaml").exists()
    assert "--reasoning goes with an instruct preset" in capsys.readouterr().err


def test_yaml_reasoning_block_typo_is_refused(tmp_path: Path) -> None:
    chatml = load_preset("chatml", "instruct")
    path = tmp_path / "p.yaml"
    from rp_context.presets.yamlio import save_preset

    save_preset(chatml.model_copy(update={"reasoning": ReasoningFormat(budget=64, thinking=True)}),
                path, full=False)
    fields = read_preset(path)
    assert fields.reasoning.budget == 64 and fields.reasoning.thinking is True
    path.write_text(path.read_text().replace("budget: 64", "budgte: 64"))
    with pytest.raises(PresetError, match="budgte"):
        read_preset(path)


@pytest.mark.parametrize(("family", "reply", "reasoning", "text"), [
    ("gpt-oss", "<|channel|>analysis<|message|>Be kind.<|end|><|start|>assistant<|channel|>final"
     "<|message|>Hello!", "Be kind.", "Hello!"),
    ("seed_oss", "<seed:think>Be brief.</seed:think>\nHi.", "Be brief.", "Hi."),
    ("chatml", "<think>\nQwen3 plans.\n</think>\n\nSure.", "Qwen3 plans.", "Sure."),
    ("bailing-think", "Ling plans.</think>Done.", "Ling plans.", "Done."),  # header opened it
])
def test_families_with_a_reasoning_shape(family, reply, reasoning, text) -> None:
    from rp_context.reasoning import ReasoningSplitter, shape_opened_by, shapes_for

    preset = load_preset(family, "instruct")
    shapes = shapes_for(preset.reasoning)
    header = preset.generation_prompt or preset.output_sequence
    splitter = ReasoningSplitter(shapes, inside=shape_opened_by(header, shapes))
    splitter.feed(reply)
    splitter.finish()
    assert splitter.result()[:2] == (reasoning, text)


def test_a_model_template_with_a_thinking_switch_gives_its_own_prefills(tmp_path: Path) -> None:
    """Qwen3's own template writes an empty block when `enable_thinking` is false: a preset made
    from that template (`--preset gguf:MODEL` / a .jinja file) writes the same when thinking is off."""
    from rp_context.pipeline import load_setup

    source = (
        "{%- for m in messages %}{{- '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}"
        "{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
        "{%- if enable_thinking is defined and enable_thinking is false %}"
        "{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}{%- endif %}"
    )
    path = tmp_path / "qwen3-like.jinja"
    path.write_text(source)
    fmt = load_setup(str(path)).instruct.reasoning
    assert fmt.off_prefill == "<think>\n\n</think>\n\n" and fmt.start_prefill == ""
    plain = tmp_path / "plain.jinja"
    plain.write_text(source.split("{%- if enable_thinking")[0] + "{%- endif %}")
    assert load_setup(str(plain)).instruct.reasoning.off_prefill is None
