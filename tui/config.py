"""The app's settings (model, context size, GPU layers, preset, persona) and where its files live.

Everything sits under `rp_context.paths.user_data_dir()` (platformdirs' per-user data folder, or
`$RP_CONTEXT_HOME`): `settings.yaml`, `cards/`, `personas/`, `presets/` and `chats/`.
"""

from __future__ import annotations

import datetime as _dt
import re
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rp_context.atomic import write_text_atomic
from rp_context.errors import InputFileError
from rp_context.paths import user_data_dir

__all__ = [
    "Settings",
    "SettingsError",
    "settings_path",
    "load_settings",
    "save_settings",
    "cards_dir",
    "personas_dir",
    "presets_dir",
    "chats_dir",
    "new_chat_path",
    "latest_chat",
]


class SettingsError(InputFileError):
    """The settings file is not valid YAML or has an unknown or bad key."""


class Settings(BaseModel):
    """What the user sets once and the app remembers between runs."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    model: str | None = None
    """GGUF model file; None: $RP_CONTEXT_MODEL or the bundled SmolLM2-135M."""
    context: int = Field(4096, ge=256, le=1_048_576)
    """Context window in tokens (n_ctx)."""
    n_gpu_layers: int = Field(0, ge=-1)
    """Layers offloaded to the GPU (-1: all; 0: CPU only)."""
    preset: str | None = None
    """Preset bundle or instruct family name, or a preset file; None: the default bundle."""
    persona: str | None = None
    """Persona file you play as; None: plain `User`."""


def settings_path() -> Path:
    return user_data_dir() / "settings.yaml"


def load_settings(path: Path | None = None) -> Settings:
    """The saved settings, or the defaults when there is no file; SettingsError when it is bad."""
    p = path or settings_path()
    if not p.exists():
        return Settings()
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise SettingsError(p, f"cannot read settings ({exc})") from exc
    if not isinstance(data, dict):
        raise SettingsError(p, "settings must be a YAML mapping")
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"]) or "settings"
        raise SettingsError(p, f"{where}: {err['msg']}") from exc


def save_settings(settings: Settings, path: Path | None = None) -> Path:
    """Write the settings atomically (only the values that differ from the defaults)."""
    p = path or settings_path()
    data = settings.model_dump(exclude_defaults=True)
    write_text_atomic(p, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return p


def cards_dir() -> Path:
    return user_data_dir() / "cards"


def personas_dir() -> Path:
    return user_data_dir() / "personas"


def presets_dir() -> Path:
    return user_data_dir() / "presets"


def chats_dir() -> Path:
    return user_data_dir() / "chats"


def _folder_name(name: str) -> str:
    cleaned = re.sub(r'[\\/:*?"<>|\x00-\x1f]+', "_", name).strip(" .")
    return cleaned or "chat"


def new_chat_path(name: str, when: _dt.datetime | None = None) -> Path:
    """A new chat file for a character or group, named as SillyTavern names them."""
    t = when or _dt.datetime.now()
    folder = chats_dir() / _folder_name(name)
    stem = f"{_folder_name(name)} - {t:%Y-%m-%d@%Hh%Mm%Ss}"
    path = folder / f"{stem}.jsonl"
    n = 2
    while path.exists():
        path = folder / f"{stem} ({n}).jsonl"
        n += 1
    return path


def latest_chat(name: str) -> Path | None:
    """The most recently changed chat of a character or group, if any."""
    folder = chats_dir() / _folder_name(name)
    files = sorted(folder.glob("*.jsonl"), key=lambda p: p.stat().st_mtime) if folder.is_dir() else []
    return files[-1] if files else None
