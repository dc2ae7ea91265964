"""The first chat screen streams a reply without blocking and stops on Esc (scripted backend)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from tui.app import ChatApp, MessageView


class ScriptedSession:
    char_name = "Wren"
    user_name = "Tess"
    greeting = "You're lucky the tide was turning."

    def __init__(self, pieces: list[str], gate: threading.Event | None = None) -> None:
        self.pieces = pieces
        self.gate = gate
        self.calls: list[tuple[str, list[tuple[str, str]]]] = []

    def reply(self, message: str, history: list[tuple[str, str]]) -> Iterator[str]:
        self.calls.append((message, history))
        for i, piece in enumerate(self.pieces):
            if self.gate is not None and i == 2:
                self.gate.wait(5)
            yield piece


async def test_reply_streams_in_and_history_grows() -> None:
    session = ScriptedSession(["Aye", ", ", "drink ", "the ", "tea."])
    app = ChatApp(session)
    async with app.run_test() as pilot:
        await pilot.press(*"Hello", "enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        views = list(app.query(MessageView))
        assert [v.speaker for v in views] == ["Wren", "Tess", "Wren"]
        assert views[-1].text == "Aye, drink the tea."
        await pilot.press(*"More", "enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
    assert session.calls[1] == ("More", [("user", "Hello"), ("assistant", "Aye, drink the tea.")])


async def test_escape_stops_the_reply() -> None:
    gate = threading.Event()
    session = ScriptedSession(["one ", "two ", "three ", "four"], gate)
    app = ChatApp(session)
    async with app.run_test() as pilot:
        await pilot.press(*"Hi", "enter")
        await pilot.pause(0.2)
        await pilot.press("escape")
        gate.set()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.query(MessageView).last().text == "one two"
