"""Fixtures: an empty user data folder per test, and apps on the real ChatSession with a scripted backend."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _scripted import ScriptedBackend

from rp_context.paths import bundled_dir


@pytest.fixture(autouse=True)
def data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own empty user data folder (settings, chats, imported cards)."""
    home = tmp_path / "home"
    monkeypatch.setenv("RP_CONTEXT_HOME", str(home))
    return home


@pytest.fixture
def cards_dir() -> Path:
    return bundled_dir("cards")


@pytest.fixture
def make_app(tiktoken_counter: Any) -> Callable[..., Any]:
    """An RPChatApp on the real ChatSession with the scripted backend and the tiktoken counter."""
    from tui.app import RPChatApp
    from tui.config import Settings
    from tui.sessions import ChatSpec

    def make(backend: ScriptedBackend, **spec: Any) -> RPChatApp:
        return RPChatApp(spec=ChatSpec(**spec), settings=Settings(), backend=backend,
                         counter=tiktoken_counter, save_settings_file=False, cursor_blink=False)

    return make
