"""Every SillyTavern preset in ../shared imports, exports back unchanged, and (instruct) renders
to a pinned golden output over one fixed conversation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rp_context.presets import (
    ContextPreset,
    InstructPreset,
    SysPromptPreset,
    dump_preset,
    export_sillytavern,
    import_sillytavern_file,
    parse_preset_text,
)
from rp_context.templates import Message

GOLDEN = Path(__file__).with_name("golden_st_instruct.json")
CONVERSATION = [
    Message("system", "You are Wren, a lighthouse keeper."),
    Message("assistant", "*waves* Welcome to the lighthouse.", name="Wren"),
    Message("user", "  Hello <|im_end|> ✓\n", name="Sam"),
    Message("assistant", "The lamp is lit.", name="Wren"),
    Message("user", "Tell me a story.", name="Sam"),
]
EXPECTED_COUNTS = {"instruct": 29, "context": 26, "sysprompt": 12}
MODELS = {"instruct": InstructPreset, "context": ContextPreset, "sysprompt": SysPromptPreset}


def _files(reference_dir: Path, kind: str) -> list[Path]:
    st = reference_dir / "sillytavern"
    return sorted((st / kind).glob("*.json")) + sorted((st / "newer" / kind).glob("*.json"))


@pytest.mark.parametrize("kind", sorted(EXPECTED_COUNTS))
def test_import_export_roundtrip(reference_dir: Path, kind: str) -> None:
    files = _files(reference_dir, kind)
    assert len([f for f in files if "newer" not in f.parts]) == EXPECTED_COUNTS[kind]
    for f in files:
        original = json.loads(f.read_text(encoding="utf-8"))
        preset = import_sillytavern_file(f)
        assert isinstance(preset, MODELS[kind]), f
        assert export_sillytavern(preset) == original, f
        # and through our YAML file format and back
        again = parse_preset_text(dump_preset(preset), f)
        assert export_sillytavern(again) == original, f


def _render_all(reference_dir: Path) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    for f in _files(reference_dir, "instruct"):
        t = import_sillytavern_file(f)
        assert isinstance(t, InstructPreset)
        r = t.render(CONVERSATION, True, user="Sam", char="Wren", speaker="Wren")
        key = ("newer/" if "newer" in f.parts else "") + f.stem
        out[key] = {"text": r.text, "stop": r.stop}
    return out


def test_instruct_presets_render_golden(reference_dir: Path) -> None:
    got = _render_all(reference_dir)
    assert len(got) == 31  # 29 from 1.12.6 and 2 newer
    expected = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert got == expected


def test_chatml_matches_sillytavern_worked_example(reference_dir: Path) -> None:
    # research/sillytavern.md §3.6: ChatML, names "always", greeting then "Hello".
    t = import_sillytavern_file(reference_dir / "sillytavern" / "instruct" / "ChatML.json")
    msgs = [Message("assistant", "GREETING", name="Seraphina"), Message("user", "Hello", name="User")]
    r = t.render(msgs, True, user="User", char="Seraphina", speaker="Seraphina")
    assert r.text == (
        "<|im_start|>assistant\nSeraphina: GREETING<|im_end|>\n"
        "<|im_start|>user\nUser: Hello<|im_end|>\n<|im_start|>assistant\nSeraphina:"
    )
    assert r.stop == ["\n<|im_end|>", "\n<|im_start|>user", "\n<|im_start|>assistant", "\n<|im_start|>system"]
    content = [p for p in r.parts if not p.special]
    assert all("<|im_" not in p.text for p in content)
