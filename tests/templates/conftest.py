"""Fixtures for the template tests: the reference templates and golden renders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def templates_ref(reference_dir: Path) -> Path:
    return reference_dir / "templates"


@pytest.fixture(scope="session")
def golden_hf(templates_ref: Path) -> dict:
    return json.loads((templates_ref / "golden" / "hf_jinja_vs_llamacpp_autodetect.json").read_text())


@pytest.fixture(scope="session")
def golden_builtin(templates_ref: Path) -> dict:
    return json.loads((templates_ref / "golden" / "llamacpp_builtin_by_name.json").read_text())
