"""The app's settings (model, context size, GPU layers, preset, persona, reply length, sampler,
keys) and its state between runs (what was open last, whether the help was seen), and where its
files live.

Everything sits under `rp_context.paths.user_data_dir()` (platformdirs' per-user data folder, or
`$RP_CONTEXT_HOME`): `settings.yaml`, `state.yaml`, `cards/`, `personas/`, `presets/`, `chats/`
and `logs/`.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rp_context import chatfolder
from rp_context.atomic import write_text_atomic
from rp_context.errors import InputFileError
from rp_context.paths import user_data_dir
from rp_context.session import SessionOptions

__all__ = [
    "AppState",
    "Settings",
    "SettingsError",
    "settings_path",
    "load_settings",
    "save_settings",
    "backup_settings",
    "load_state",
    "save_state",
    "cards_dir",
    "personas_dir",
    "presets_dir",
    "chats_dir",
    "logs_dir",
    "chat_folder",
    "new_chat_path",
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
    reply_length: int | None = Field(None, ge=1, le=32768)
    """Longest reply in tokens; None: the sampler preset's `max_tokens`."""
    sampler: str | None = None
    """Sampler preset (presets/sampler) name; None: the bundle's."""
    summary_server: str | None = None
    """OpenAI-compatible server URL that writes the memory's summaries; None: the chat's model."""
    newline_key: Literal["shift+enter", "ctrl+j"] = "shift+enter"
    """The key that starts a new line in the message box (ctrl+j always does; Enter sends)."""
    keys: dict[str, str] = Field(default_factory=dict)
    """Remapped keys: action name (e.g. `regenerate`, `help`) to key(s), e.g. `ctrl+e`."""

    def session_options(self) -> SessionOptions:
        """These settings as the options a chat runs with (the same value the command line and
        library callers pass to `ChatSession.open`)."""
        return SessionOptions(model=self.model, n_ctx=self.context, n_gpu_layers=self.n_gpu_layers,
                              preset=self.preset, sampler=self.sampler, max_tokens=self.reply_length,
                              summary_server=self.summary_server)


class AppState(BaseModel):
    """Where the user left off, so the next `rp-chat` opens there."""

    model_config = ConfigDict(extra="ignore")

    cards: list[str] = Field(default_factory=list)
    roster: str | None = None
    chat: str | None = None
    preset: str | None = None
    persona: str | None = None
    seen_help: bool = False


def settings_path() -> Path:
    return user_data_dir() / "settings.yaml"


def state_path() -> Path:
    return user_data_dir() / "state.yaml"


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


def backup_settings(path: Path | None = None) -> Path | None:
    """Keep a copy of a settings file the app could not use (`settings.yaml.broken`) before it
    is replaced, so nothing the user wrote is lost."""
    p = path or settings_path()
    if not p.exists():
        return None
    target = p.with_name(p.name + ".broken")
    write_text_atomic(target, p.read_text(encoding="utf-8", errors="replace"))
    return target


def load_state() -> AppState:
    """The state of the last run; the defaults when there is none or it cannot be read."""
    try:
        data = yaml.safe_load(state_path().read_text(encoding="utf-8"))
        return AppState.model_validate(data or {})
    except (OSError, UnicodeDecodeError, yaml.YAMLError, ValidationError, TypeError):
        return AppState()


def save_state(state: AppState) -> None:
    write_text_atomic(state_path(), yaml.safe_dump(state.model_dump(), sort_keys=False,
                                                   allow_unicode=True))


def cards_dir() -> Path:
    return user_data_dir() / "cards"


def personas_dir() -> Path:
    return user_data_dir() / "personas"


def presets_dir() -> Path:
    return user_data_dir() / "presets"


def chats_dir() -> Path:
    return chatfolder.chats_root()


def logs_dir() -> Path:
    return user_data_dir() / "logs"


def chat_folder(name: str) -> Path:
    """The folder of a character's or group's chats."""
    return chatfolder.chat_folder(chats_dir(), name)


def new_chat_path(name: str, when: _dt.datetime | None = None, *, stem: str | None = None) -> Path:
    """A new chat file for a character or group, named as SillyTavern names them."""
    return chatfolder.new_chat_path(chat_folder(name), stem or name, when)

