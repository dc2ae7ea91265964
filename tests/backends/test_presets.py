"""The bundled sampler presets are valid SamplerSettings once their header keys are set aside."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rp_context.sampling import SamplerSettings

HEADER = {"kind", "version", "name", "description"}


def test_the_three_named_presets_exist(repo_dir: Path) -> None:
    names = {p.stem for p in (repo_dir / "presets" / "sampler").glob("*.yaml")}
    assert {"balanced", "creative", "precise"} <= names


@pytest.mark.parametrize(
    "path", sorted((Path(__file__).resolve().parents[2] / "presets" / "sampler").glob("*.yaml")), ids=lambda p: p.stem
)
def test_sampler_preset_validates(path: Path) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert data["kind"] == "sampler" and data["version"] == 1
    assert isinstance(data["name"], str) and data["name"]
    assert isinstance(data["description"], str) and data["description"]
    settings = SamplerSettings.model_validate({k: v for k, v in data.items() if k not in HEADER})
    # Every field is spelled out, so the file says exactly what it does.
    assert set(data) - HEADER == set(SamplerSettings.model_fields) - {"sillytavern_extra"}
    assert settings.max_tokens > 0
