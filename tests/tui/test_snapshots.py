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
    monkeypatch.setattr("rp_context.session.st_timestamp", lambda when=None: frozen)
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
