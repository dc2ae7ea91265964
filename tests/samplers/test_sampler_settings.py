"""Sampler settings and presets: validation with file, line and key; the shipped presets;
SillyTavern text-completion presets in and out; what each server is sent (no model)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from rp_context.backends.samplers import request_params
from rp_context.cli import main
from rp_context.errors import PresetError
from rp_context.presets import (
    SamplerPreset,
    dump_preset,
    export_sillytavern,
    import_sillytavern_file,
    list_presets,
    load_preset,
    load_sampler,
    parse_preset_text,
)
from rp_context.sampling import DEFAULT_SAMPLER_ORDER, SamplerSettings

ST_FILES = ("Universal-Light.json", "Universal-Creative.json", "Deterministic.json")


@pytest.fixture(autouse=True)
def _isolated_user_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RP_CONTEXT_HOME", str(tmp_path / "home"))


@pytest.fixture(scope="module")
def textgen_dir(reference_dir: Path) -> Path:
    return reference_dir / "sillytavern" / "textgen"


# -- validation ----------------------------------------------------------------------------------


def test_unknown_key_is_refused_with_file_line_and_key(tmp_path: Path) -> None:
    f = tmp_path / "mine.yaml"
    f.write_text("kind: sampler\nversion: 1\nname: mine\ntemperature: 1.0\ndry_multipler: 0.8\n")
    with pytest.raises(PresetError) as err:
        load_preset(f)
    msg = str(err.value)
    assert "mine.yaml" in msg and "line 5" in msg and "dry_multipler" in msg


def test_bad_values_name_their_line(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text("kind: sampler\nversion: 1\nname: bad\nsampler_order: [dry, mn_p]\n")
    with pytest.raises(PresetError, match=r"line 4: sampler_order.*'mn_p'"):
        load_preset(f)
    f.write_text("kind: sampler\nversion: 1\nname: bad\nxtc_probability: 1.5\n")
    with pytest.raises(PresetError, match="line 4: xtc_probability"):
        load_preset(f)
    f.write_text("kind: sampler\nversion: 1\nname: bad\nbanned_strings: ['ok', '']\n")
    with pytest.raises(PresetError, match="line 4: banned_strings"):
        load_preset(f)


def test_order_accepts_llama_cpp_aliases_and_skips_what_it_skips() -> None:
    s = SamplerSettings(sampler_order=["Top-K", "minp", "tfs_z", "typical_p", "temp", "nucleus"])
    assert s.chain_order() == ["top_k", "min_p", "temperature", "top_p"]


# -- shipped presets -------------------------------------------------------------------------------


def test_shipped_dry_and_xtc_presets() -> None:
    names = {e.name for e in list_presets("sampler")}
    assert {"dry-min-p", "xtc", "anti-slop"} <= names
    dry = load_sampler("dry-min-p")
    assert dry.dry_multiplier > 0 and dry.min_p > 0 and dry.repeat_penalty == 1.0
    xtc = load_sampler("xtc")
    assert xtc.xtc_probability > 0 and xtc.xtc_threshold <= 0.5
    slop = load_sampler("anti-slop")
    assert "shivers down" in slop.banned_strings


def test_a_bundle_can_name_a_sampler_preset(tmp_path: Path) -> None:
    from rp_context.pipeline import load_setup

    f = tmp_path / "rp.yaml"
    f.write_text(
        "kind: bundle\nversion: 1\nname: rp\ninstruct: chatml\ncontext: default\n"
        "sysprompt: roleplay\nsampler: xtc\n"
    )
    setup = load_setup(str(f))
    assert setup.sampler.xtc_probability == load_sampler("xtc").xtc_probability


# -- SillyTavern -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ST_FILES)
def test_sillytavern_preset_imports_and_exports_equal(textgen_dir: Path, name: str) -> None:
    original = json.loads((textgen_dir / name).read_text(encoding="utf-8"))
    preset = import_sillytavern_file(textgen_dir / name)
    assert isinstance(preset, SamplerPreset)
    assert preset.temperature == original["temp"] and preset.min_p == original["min_p"]
    assert preset.sampler_order == original["samplers"]
    assert export_sillytavern(preset) == original
    # and through our YAML file as well
    again = parse_preset_text(dump_preset(preset))
    exported = export_sillytavern(again)
    assert exported == original
    assert json.dumps(exported, sort_keys=True) == json.dumps(original, sort_keys=True)


def test_sillytavern_dynatemp_bans_and_bias_map_to_our_fields(textgen_dir: Path, tmp_path: Path) -> None:
    data = json.loads((textgen_dir / "Universal-Light.json").read_text(encoding="utf-8"))
    data.update(
        dynatemp=True, min_temp=0.5, max_temp=1.5, dry_multiplier=0.8, xtc_probability=0.5,
        nsigma=1.5, banned_tokens='[42, 7]\n"shivers down"\nministrations',
        logit_bias=[{"id": "a1", "text": "sword", "value": -5}],
    )
    f = tmp_path / "Mine.json"
    f.write_text(json.dumps(data))
    p = import_sillytavern_file(f)
    assert isinstance(p, SamplerPreset) and p.name == "Mine"
    assert (p.temperature, p.dynatemp_range) == (1.0, 0.5)
    assert p.top_n_sigma == 1.5 and p.dry_multiplier == 0.8 and p.xtc_probability == 0.5
    assert p.dry_sequence_breakers == ["\n", ":", '"', "*"]
    assert p.logit_bias[0].text == "sword" and p.logit_bias[0].value == -5
    from rp_context.backends.samplers import banned_phrases

    assert banned_phrases(p) == ["shivers down"]
    assert export_sillytavern(p) == data


def test_preset_import_and_export_commands(textgen_dir: Path, tmp_path: Path, capsys) -> None:
    src = textgen_dir / "Universal-Creative.json"
    assert main(["preset", "import", str(src)]) == 0
    out = capsys.readouterr().out
    assert "sampler preset 'Universal-Creative'" in out
    assert main(["preset", "export", "universal-creative", "--kind", "sampler", "-o", str(tmp_path / "x.json")]) == 0
    assert json.loads((tmp_path / "x.json").read_text()) == json.loads(src.read_text())
    capsys.readouterr()
    assert main(["preset", "export", "dry-min-p", "--kind", "sampler"]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert exported["dry_multiplier"] == 0.8 and exported["samplers"] == list(DEFAULT_SAMPLER_ORDER)
    assert exported["dry_sequence_breakers"] == json.dumps(["\n", ":", '"', "*"])


def test_a_broken_sillytavern_sampler_preset_is_one_line_exit_2(tmp_path: Path, capsys) -> None:
    f = tmp_path / "Broken.json"
    f.write_text(json.dumps({"temp": 1.0, "rep_pen": 1.0, "samplers": ["dry", "nope"]}))
    assert main(["preset", "import", str(f)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Broken.json" in err[0] and "samplers" in err[0]
    assert not list((tmp_path / "home").rglob("*.yaml"))


# -- what servers are sent -----------------------------------------------------------------------


RICH = SamplerSettings(
    temperature=0.9, dynatemp_range=0.3, top_k=0, min_p=0.05, top_n_sigma=1.0,
    repeat_penalty=1.05, repeat_last_n=-1, dry_multiplier=0.8, dry_penalty_last_n=-1,
    xtc_probability=0.5, xtc_threshold=0.1, sampler_order=["dry", "min_p", "xtc", "temperature"],
    logit_bias=[{"text": "[5]", "value": 3}, {"text": "sword", "value": -100}],
    banned_tokens=["[9]"], banned_strings=["shivers down"], seed=7, max_tokens=40,
)


def test_llama_cpp_server_gets_every_setting_but_banned_strings() -> None:
    p, unsupported = request_params(RICH, "llama.cpp", n_ctx=2048)
    assert unsupported == ["banned_strings"]
    assert p["samplers"] == ["dry", "min_p", "xtc", "temperature"]
    assert (p["dry_multiplier"], p["dry_penalty_last_n"], p["repeat_last_n"]) == (0.8, 2048, 2048)
    assert p["dry_sequence_breakers"] == ["\n", ":", '"', "*"]
    assert (p["xtc_probability"], p["top_n_sigma"], p["dynatemp_range"]) == (0.5, 1.0, 0.3)
    assert p["logit_bias"] == [[5, 3.0], [" sword", False], [9, False]]
    assert (p["seed"], p["max_tokens"]) == (7, 40)


def test_other_servers_report_what_they_cannot_apply() -> None:
    _, lcp = request_params(RICH, "llama-cpp-python")
    assert {"dry_multiplier", "xtc_probability", "top_n_sigma", "dynatemp_range",
            "sampler_order", "banned_strings", "repeat_last_n"} <= set(lcp)
    assert "min_p" not in lcp
    body, oai = request_params(RICH, "openai")
    assert {"min_p", "dry_multiplier", "xtc_probability", "logit_bias"} <= set(oai)
    assert "min_p" not in body and "dry_multiplier" not in body
    plain, none = request_params(SamplerSettings(top_k=0, min_p=0.0, repeat_penalty=1.0), "openai")
    assert none == [] and plain["top_p"] == 0.95


def test_remote_backend_warns_once_per_setting() -> None:
    import httpx

    from rp_context.backends.base import PromptInput
    from rp_context.backends.remote import RemoteBackend, SamplerSupportWarning

    client = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(404)))
    remote = RemoteBackend("http://127.0.0.1:9", kind="openai", model="m", client=client)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        body = remote._body(PromptInput(text="hi"), RICH, [])
        remote._body(PromptInput(text="hi"), RICH, [])
    ours = [w for w in seen if issubclass(w.category, SamplerSupportWarning)]
    assert len(ours) == len(remote.warnings) == len(set(remote.warnings))
    assert any("dry_multiplier" in w for w in remote.warnings)
    assert "dry_multiplier" not in body and body["temperature"] == 0.9
