"""The app's workers talk to the UI only through typed messages: a reply arrives as started, its
chunks in order, ended and done, all handled on the UI thread; a failing backend becomes a notice,
never a crash; opening a chat, listing the cast and importing run off the UI thread while it
shows what it is loading."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from _scripted import ScriptedBackend
from textual.message import Message
from textual.widgets import Input, Static

import tui.app
import tui.screens.modals
from rp_context.errors import BackendError
from tui.crashlog import log_path
from tui.messages import (
    CastListed,
    FileImported,
    RepliesDone,
    ReplyChunk,
    ReplyEnded,
    ReplyFailed,
    ReplyStarted,
    SessionOpened,
)
from tui.screens import ImportScreen, PickScreen
from tui.widgets import MessageView, PromptInput


async def settle(app: Any, pilot: Any) -> None:
    for _ in range(3):
        await app.workers.wait_for_complete()
        await pilot.pause()


def record_notices(app: Any) -> list[tuple[str, str]]:
    """(title, message) of every notice the app shows from now on."""
    notices: list[tuple[str, str]] = []
    notify = app.notify

    def recording(message: str, **kw: Any) -> None:
        notices.append((str(kw.get("title", "")), str(message)))
        notify(message, **kw)

    app.notify = recording
    return notices


class FailingBackend(ScriptedBackend):
    """A backend that fails when asked to stream: with the library's error, or a plain bug."""

    def __init__(self, error: Exception) -> None:
        super().__init__([])
        self.error = error

    def stream(self, prompt: Any, **kw: Any) -> Any:
        raise self.error


async def test_reply_arrives_as_typed_messages_in_order_on_the_ui_thread(make_app: Any) -> None:
    reply = "One two three four five six seven eight."
    app = make_app(ScriptedBackend([reply]))
    seen: list[tuple[Message, bool]] = []
    kinds = (ReplyStarted, ReplyChunk, ReplyEnded, RepliesDone)

    def hook(message: Message) -> None:
        if isinstance(message, kinds):
            seen.append((message, threading.current_thread() is threading.main_thread()))

    async with app.run_test(size=(120, 40), message_hook=hook) as pilot:
        await pilot.pause()
        await pilot.press(*"Hi", "enter")
        await settle(app, pilot)
        last = list(app.chat_screen.query(MessageView))[-1]
        assert last.text == reply
    order = [type(m).__name__ for m, _ in seen]
    assert order[0] == "ReplyStarted" and order[-2:] == ["ReplyEnded", "RepliesDone"]
    assert set(order[1:-2]) == {"ReplyChunk"}
    chunks = [m.text for m, _ in seen if isinstance(m, ReplyChunk)]
    assert "".join(chunks) == reply  # every piece, once, in order
    assert all(on_ui for _, on_ui in seen)
    turn = seen[0][0].turn  # type: ignore[attr-defined]
    assert all(m.turn is turn for m, _ in seen if isinstance(m, (ReplyChunk, ReplyEnded)))


async def test_a_backend_that_refuses_is_a_notice_and_the_chat_goes_on(make_app: Any) -> None:
    app = make_app(FailingBackend(BackendError("the server is not answering")))
    failures: list[ReplyFailed] = []

    def hook(message: Message) -> None:
        if isinstance(message, ReplyFailed):
            failures.append(message)

    async with app.run_test(size=(120, 40), message_hook=hook) as pilot:
        notices = record_notices(app)
        await pilot.pause()
        await pilot.press(*"Hello", "enter")
        await settle(app, pilot)
        screen = app.chat_screen
        assert not screen.generating and not screen.has_class("generating")
        assert ("Cannot reply", "the server is not answering") in notices
        assert [f.expected for f in failures] == [True]
        # the user's message is kept; no empty reply was added
        assert [m.role for m in app.session.chat.messages][-1] == "user"
        await pilot.press(*"again")  # the app still takes input
        assert screen.query_one(PromptInput).value == "again"
    assert app.return_code in (None, 0)
    assert not log_path().exists()  # an expected failure is not a crash report


async def test_an_unexpected_backend_error_is_logged_and_shown_not_fatal(make_app: Any) -> None:
    app = make_app(FailingBackend(RuntimeError("bug in the backend")))
    async with app.run_test(size=(120, 40)) as pilot:
        notices = record_notices(app)
        await pilot.pause()
        await pilot.press(*"Hello", "enter")
        await settle(app, pilot)
        assert not app.chat_screen.generating
        title, text = notices[-1]
        assert title == "Generation failed" and "RuntimeError: bug in the backend" in text
    assert app.return_code in (None, 0)
    assert "bug in the backend" in log_path().read_text(encoding="utf-8")


async def test_opening_a_chat_runs_off_the_ui_thread_and_says_so(
        make_app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    threads: list[threading.Thread] = []
    real_open = tui.app.open_session

    def slow_open(*args: Any, **kw: Any) -> Any:
        threads.append(threading.current_thread())
        assert release.wait(10)
        return real_open(*args, **kw)

    app = make_app(ScriptedBackend([]))
    monkeypatch.setattr(tui.app, "open_session", slow_open)
    opened: list[SessionOpened] = []
    async with app.run_test(size=(120, 40),
                            message_hook=lambda m: isinstance(m, SessionOpened) and opened.append(m)
                            ) as pilot:
        await pilot.pause()
        first = app.session
        app.reopen(app.spec, fresh=True)
        while not threads:
            await pilot.pause(0.02)
        busy = app.chat_screen.query_one("#busy", Static)
        assert busy.display and "Opening" in str(busy.render())
        await pilot.press("x")  # the UI answers while the chat opens
        assert app.chat_screen.query_one(PromptInput).value == "x"
        assert app.session is first
        release.set()
        await settle(app, pilot)
        assert threads[0] is not threading.main_thread()
        assert len(opened) == 1 and app.session is opened[0].session is not first
        assert app.chat_screen.session is app.session
        assert not busy.display


async def test_a_chat_that_cannot_open_is_a_notice(make_app: Any, tmp_path: Path) -> None:
    app = make_app(ScriptedBackend([]))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    async with app.run_test(size=(120, 40)) as pilot:
        notices = record_notices(app)
        await pilot.pause()
        first = app.session
        app.reopen(type(app.spec)(cards=(str(bad),)))
        await settle(app, pilot)
        assert app.session is first and app.chat_screen.session is first
        assert notices and notices[-1][0] == "Cannot open" and "bad.json" in notices[-1][1]
        assert not app.chat_screen.query_one("#busy").display
    assert app.return_code in (None, 0)


async def test_listing_the_cast_runs_off_the_ui_thread(make_app: Any,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    threads: list[threading.Thread] = []
    real_list = tui.app.list_cast

    def slow_list() -> Any:
        threads.append(threading.current_thread())
        assert release.wait(10)
        return real_list()

    monkeypatch.setattr(tui.app, "list_cast", slow_list)
    app = make_app(ScriptedBackend([]))
    listed: list[CastListed] = []
    async with app.run_test(size=(120, 40),
                            message_hook=lambda m: isinstance(m, CastListed) and listed.append(m)
                            ) as pilot:
        await pilot.pause()
        await pilot.press("f3")
        while not threads:
            await pilot.pause(0.02)
        busy = app.chat_screen.query_one("#busy", Static)
        assert busy.display and "Listing" in str(busy.render())
        assert not isinstance(app.screen, PickScreen)
        release.set()
        await settle(app, pilot)
        assert threads[0] is not threading.main_thread()
        assert isinstance(app.screen, PickScreen) and not busy.display
        assert [e.name for e in listed[0].entries] == [e.name for e in real_list()]


async def test_importing_runs_off_the_ui_thread(make_app: Any, cards_dir: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[threading.Thread] = []
    real_import = tui.screens.modals.import_file

    def watched(path: Any) -> Any:
        threads.append(threading.current_thread())
        return real_import(path)

    monkeypatch.setattr(tui.screens.modals, "import_file", watched)
    app = make_app(ScriptedBackend([]))
    imported: list[FileImported] = []
    source = next(cards_dir.glob("*.png"))
    async with app.run_test(size=(120, 40),
                            message_hook=lambda m: isinstance(m, FileImported) and imported.append(m)
                            ) as pilot:
        await pilot.pause()
        await pilot.press("f6")
        assert isinstance(app.screen, ImportScreen)
        app.screen.query_one("#import-path", Input).value = str(source)
        await pilot.press("enter")
        await settle(app, pilot)
        assert threads and threads[0] is not threading.main_thread()
        assert len(imported) == 1 and imported[0].result.path.exists()
        assert not isinstance(app.screen, ImportScreen)
