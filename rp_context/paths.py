"""Where the shipped sample cards and presets live, and the user's own data folder."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

__all__ = ["bundled_dir", "default_card_path", "user_data_dir", "DATA_ENV_VAR"]

DATA_ENV_VAR = "RP_CONTEXT_HOME"
"""Environment variable that overrides the user data folder (cards, chats, presets, settings)."""

_PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_CARD = "wren-halloway.json"


def bundled_dir(name: str) -> Path:
    """The shipped `cards/` or `presets/` folder: inside an installed wheel, or the source checkout."""
    for candidate in (_PACKAGE_DIR / "_bundled" / name, _PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    return _PACKAGE_DIR.parent / name


def default_card_path() -> Path:
    """The sample card used when none is named."""
    return bundled_dir("cards") / DEFAULT_CARD


def user_data_dir() -> Path:
    """The user's data folder: $RP_CONTEXT_HOME, else platformdirs' per-user data dir."""
    env = os.environ.get(DATA_ENV_VAR)
    return Path(env).expanduser() if env else Path(platformdirs.user_data_dir("rp-context"))
