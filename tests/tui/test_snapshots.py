"""Snapshots of the main screens (update with `pytest tests/tui --snapshot-update` after a reviewed
change). The scripted backend and the tiktoken counter make every figure on screen repeatable; the
user data folder is a fixed path and the clock is frozen, so nothing changes from run to run."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from _scripted import ScriptedBackend
from textual.widgets import Input

REPLY = "*Wren snorts into her tea.* A **fool**, then. Sit closer to the stove, you're dripping on my Ledger."
SIZE = (120, 36)


@pytest.fixture(autouse=True)
def fixed_home(monkeypatch: pytest.MonkeyPatch) -> Path:
    home = Path(tempfile.gettempdir()) / "rp-chat-snapshot-home"
    shutil.rmtree(home, ignore_errors=True)
    monkeypatch.setenv("RP_CONTEXT_HOME", str(home))
    # A group's speaker pick is seeded by the chat's creation time: freeze the clock.
    frozen = "June 19, 2023 2:20pm"
    monkeypatch.setattr("rp_context.chat.st_timestamp", lambda when=None: frozen)
    return home


async def settle(pilot: Any) -> None:
    for _ in range(2):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


def test_chat_screen(snap_compare: Any, make_app: Any) -> None:
    async def run_before(pilot: Any) -> None:
        await settle(pilot)
        await pilot.press(*"I sailed toward the light.", "enter")
        await settle(pilot)

    assert snap_compare(make_app(ScriptedBackend([REPLY])), terminal_size=SIZE, run_before=run_before)


def test_inspector_screen(snap_compare: Any, make_app: Any) -> None:
    async def run_before(pilot: Any) -> None:
        await settle(pilot)
        await pilot.press(*"I sailed toward the light.", "enter")
        await settle(pilot)
        await pilot.press("f2")
        await pilot.pause()

    assert snap_compare(make_app(ScriptedBackend([REPLY])), terminal_size=SIZE, run_before=run_before)


def test_group_chat_screen(snap_compare: Any, make_app: Any, cards_dir: Path) -> None:
    async def run_before(pilot: Any) -> None:
        await settle(pilot)
        await pilot.press("ctrl+g")
        await settle(pilot)

    app = make_app(ScriptedBackend(["Aye.", "Mind the lamp.", "*The old man says nothing.*"]),
                   roster=str(cards_dir / "skerry-light.roster.yaml"))
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_import_error_dialog(snap_compare: Any, make_app: Any, fixed_home: Path) -> None:
    async def run_before(pilot: Any) -> None:
        await settle(pilot)
        await pilot.press("f6")
        bad = fixed_home / "broken.json"
        bad.write_text("{not a card", encoding="utf-8")
        pilot.app.screen.query_one(Input).value = str(bad)
        await pilot.press("enter")
        await pilot.pause()

    assert snap_compare(make_app(ScriptedBackend([])), terminal_size=SIZE, run_before=run_before)


def _chatted(pilot_keys: tuple[str, ...] = ()) -> Any:
    async def run_before(pilot: Any) -> None:
        await settle(pilot)
        await pilot.press(*"I sailed toward the light.", "enter")
        await settle(pilot)
        for key in pilot_keys:
            await pilot.press(key)
            await pilot.pause()
        await settle(pilot)

    return run_before


def test_chat_screen_80x24(snap_compare: Any, make_app: Any) -> None:
    """The smallest common terminal: the side panel folds away, the key hints fit."""
    assert snap_compare(make_app(ScriptedBackend([REPLY])), terminal_size=(80, 24),
                        run_before=_chatted())


def test_chat_screen_160x48(snap_compare: Any, make_app: Any) -> None:
    assert snap_compare(make_app(ScriptedBackend([REPLY])), terminal_size=(160, 48),
                        run_before=_chatted())


def test_help_screen(snap_compare: Any, make_app: Any) -> None:
    assert snap_compare(make_app(ScriptedBackend([REPLY])), terminal_size=SIZE,
                        run_before=_chatted(("f1",)))


def test_card_editor(snap_compare: Any, make_app: Any) -> None:
    assert snap_compare(make_app(ScriptedBackend([REPLY])), terminal_size=SIZE,
                        run_before=_chatted(("f8",)))


def test_chat_browser(snap_compare: Any, make_app: Any, fixed_home: Path) -> None:
    import os
    import time
    from datetime import datetime

    folder = fixed_home / "chats" / "Wren Halloway"
    folder.mkdir(parents=True)
    first = folder / "The storm night.jsonl"

    async def run_before(pilot: Any) -> None:
        await settle(pilot)
        await pilot.press(*"I sailed toward the light.", "enter")
        await settle(pilot)
        older = folder / "Wren Halloway - 2023-06-18@21h05m00s.jsonl"
        older.write_text(first.read_text(encoding="utf-8").rsplit("\n", 2)[0] + "\n",
                         encoding="utf-8")
        for path, when in ((first, (2023, 6, 19, 14, 20)), (older, (2023, 6, 18, 21, 5))):
            stamp = time.mktime(datetime(*when).timetuple())  # local time, as the list shows
            os.utime(path, (stamp, stamp))
        await pilot.press("ctrl+o")
        await settle(pilot)

    app = make_app(ScriptedBackend([REPLY]), chat=first)
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
