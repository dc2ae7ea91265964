"""Fixtures for the world-info tests: the reference SillyTavern lorebook and card."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def eldoria_path(reference_dir):
    return reference_dir / "sillytavern" / "worlds" / "Eldoria.json"


@pytest.fixture(scope="session")
def seraphina_path(reference_dir):
    return reference_dir / "sillytavern" / "cards" / "default_Seraphina.card.json"
