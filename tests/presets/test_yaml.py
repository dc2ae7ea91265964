"""Preset files: shipped presets load, unknown keys fail with file/line/key, `|` block strings,
lookup by name, and the `preset` and `format` commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from rp_context.cli import main
from rp_context.errors import PresetError
from rp_context.presets import (
    KIND_DIRS,
    BundlePreset,
    SamplerPreset,
    dump_preset,
    find_preset,
    get_family,
    list_families,
    list_presets,
    load_preset,
    load_preset_file,
    parse_preset_text,
)
from rp_context.sampling import SamplerSettings
from rp_context.templates import InstructTemplate

FAMILIES = {
    "chatml", "llama2", "llama3", "mistral-v1", "mistral-v3", "mistral-v3-tekken", "mistral-v7",
    "mistral-v7-tekken", "gemma", "phi3", "zephyr", "vicuna", "command-r", "alpaca", "plain",
}


@pytest.fixture(autouse=True)
def _isolated_user_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RP_CONTEXT_HOME", str(tmp_path / "home"))


def test_every_shipped_preset_loads_and_round_trips(repo_dir: Path) -> None:
    files = sorted((repo_dir / "presets").glob("*/*.yaml"))
    kinds = {f.parent.name for f in files}
    assert {"instruct", "context", "sysprompt", "bundles"} <= kinds
    for f in files:
        preset = load_preset_file(f)
        if f.parent.name != "sampler":  # sampler files (another module's) carry display names
            assert preset.name == f.stem, f
        again = parse_preset_text(dump_preset(preset), f)
        assert again == preset, f
    assert FAMILIES <= set(list_families())


def test_bundles_name_existing_presets() -> None:
    bundles = list_presets("bundle")
    assert {"default", "chatml", "llama3", "mistral-v7", "gemma", "alpaca"} <= {b.name for b in bundles}
    for entry in bundles:
        b = load_preset(entry.path)
        assert isinstance(b, BundlePreset)
        assert isinstance(load_preset(b.instruct, "instruct"), InstructTemplate)
        load_preset(b.context, "context")
        load_preset(b.sysprompt, "sysprompt")
        assert isinstance(load_preset(b.sampler, "sampler"), SamplerPreset)


def test_sampler_preset_validates_into_settings(tmp_path: Path) -> None:
    f = tmp_path / "warm.yaml"
    f.write_text("kind: sampler\nversion: 1\nname: warm\ntemperature: 1.2\nmin_p: 0.1\nseed: 7\n")
    p = load_preset(f, "sampler")
    assert isinstance(p, SamplerPreset)
    s = p.settings()
    assert type(s) is SamplerSettings and s.temperature == 1.2 and s.seed == 7 and s.top_k == 40


def test_bundle_accepts_budget(tmp_path: Path) -> None:
    f = tmp_path / "b.yaml"
    f.write_text("kind: bundle\nversion: 1\nname: b\ninstruct: gemma\ncontext: default\n"
                 "sysprompt: roleplay\nsampler: balanced\nbudget: tight\n")
    b = load_preset(f)
    assert isinstance(b, BundlePreset) and b.budget == "tight"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("kind: instruct\nversion: 1\nname: x\n\ninput_sequnce: a\n", "line 5: unknown key 'input_sequnce'"),
        ("kind: sampler\nversion: 1\nname: x\ntemprature: 1\n", "line 4: unknown key 'temprature'"),
        ("kind: bundle\nversion: 1\nname: x\ninstruct: a\n", "missing key 'context'"),
        ("kind: instruct\nversion: 2\nname: x\n", "line 2: 'version' must be 1"),
        ("kind: recipe\nversion: 1\n", "line 1: 'kind' must be one of"),
        ("kind: instruct\nversion: 1\nwrap: [1\n", "invalid YAML"),
        ("- a\n- b\n", "must be a YAML mapping"),
        ("kind: sampler\nversion: 1\nname: x\ntemperature: hot\n", "line 4: temperature"),
        ("kind: instruct\nversion: 1\nname: x\nsystem_role: maybe\n", "line 4: system_role"),
    ],
)
def test_bad_preset_names_file_line_and_key(tmp_path: Path, text: str, needle: str) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(PresetError) as err:
        load_preset_file(f)
    assert str(f) in str(err.value) and needle in str(err.value)


def test_multiline_strings_are_block_style() -> None:
    text = dump_preset(get_family("chatml"))
    assert "input_sequence: |\n  <|im_start|>user\n" in text
    assert yaml.safe_load(text)["input_sequence"] == "<|im_start|>user\n"


def test_user_preset_shadows_bundled(tmp_path: Path) -> None:
    user = tmp_path / "home" / "presets" / KIND_DIRS["instruct"]
    user.mkdir(parents=True)
    (user / "chatml.yaml").write_text("kind: instruct\nversion: 1\nname: chatml\ninput_sequence: 'U: '\n")
    assert find_preset("chatml", "instruct").origin == "user"
    assert get_family("chatml").input_sequence == "U: "


def test_cli_preset_import_list_show(tmp_path: Path, reference_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = reference_dir / "sillytavern" / "instruct" / "Llama 3 Instruct.json"
    assert main(["preset", "import", str(src)]) == 0
    written = tmp_path / "home" / "presets" / "instruct" / "llama-3-instruct.yaml"
    assert written.is_file()
    before = written.read_bytes()
    assert main(["preset", "import", str(src)]) == 2  # refuses to overwrite
    assert written.read_bytes() == before
    capsys.readouterr()
    assert main(["preset", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {"kind": "instruct", "name": "llama-3-instruct", "origin": "user", "path": str(written)} in rows
    assert main(["preset", "show", "llama-3-instruct"]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["kind"] == "instruct" and shown["output_suffix"] == "<|eot_id|>"
    assert main(["preset", "export", "llama-3-instruct"]) == 0
    assert json.loads(capsys.readouterr().out)["input_sequence"] == json.loads(src.read_text())["input_sequence"]


def test_cli_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["preset", "import", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(bad) in err and "invalid JSON" in err
    assert main(["preset", "show", "no-such-preset"]) == 2
    assert "no preset named 'no-such-preset'" in capsys.readouterr().err
