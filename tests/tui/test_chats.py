"""Every chat within reach: reopening where you left off, the chat browser (name, date, count,
last line; rename, delete), branching from any message, and group greetings from every member."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from _scripted import ScriptedBackend
from textual.widgets import DataTable, Input

from rp_context.chat import load_chat
from rp_context.chatfolder import PARENT_KEY, list_chats
from tui.__main__ import parser, prepare
from tui.config import chat_folder, load_state
from tui.screens import AskScreen, ChatBrowserScreen, ConfirmScreen
from tui.widgets import MessageView, PromptInput


async def settle(app: Any, pilot: Any) -> None:
    for _ in range(3):
        await app.workers.wait_for_complete()
        await pilot.pause()


def _args(*argv: str) -> argparse.Namespace:
    return parser().parse_args(list(argv))


async def test_reopening_where_you_left_off(make_app: Any, cards_dir: Path,
                                            tiktoken_counter: Any) -> None:
    tobias = str(cards_dir / "tobias-marrow.png")
    persona = str(cards_dir / "sam-ashdown.persona.yaml")
    app = make_app(ScriptedBackend(["Aye."]), cards=(tobias,), persona=persona, preset="chatml")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press(*"Hello Tobias", "enter")
        await settle(app, pilot)
        chat = app.session.chat_path
    state = load_state()
    assert state.cards == [tobias] and state.chat == str(chat)
    # the next start, with nothing on the command line, opens that chat with that setup
    kwargs = prepare(_args(), backend=ScriptedBackend([]), counter=tiktoken_counter)
    session = kwargs["session"]
    assert session.chat_path == chat and session.members == ["Tobias Marrow"]
    assert session.user == "Sam Ashdown" and session.setup.name == "chatml"
    assert [m.text for m in session.chat.messages][-2:] == ["Hello Tobias", "Aye."]
    # --new: a new chat with the same character
    kwargs = prepare(_args("--new"), backend=ScriptedBackend([]), counter=tiktoken_counter)
    assert kwargs["session"].members == ["Tobias Marrow"] and kwargs["session"].chat_path != chat
    assert len(kwargs["session"].chat.messages) == 1
    # a chat that was deleted since: the character's latest (or a new) chat opens, no error
    chat.unlink()
    kwargs = prepare(_args(), backend=ScriptedBackend([]), counter=tiktoken_counter)
    assert kwargs["session"].members == ["Tobias Marrow"] and not kwargs["problems"]


async def test_reopening_the_sample_characters_chat(make_app: Any, tiktoken_counter: Any) -> None:
    app = make_app(ScriptedBackend(["Aye."]))  # nothing named: the sample card
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+n", "enter")  # a second chat, so "latest" alone is not enough
        await settle(app, pilot)
        newest = app.session.chat_path
        await pilot.press("ctrl+o")
        await pilot.pause()
        older = next(c.path for c in app.screen.chats if c.path != newest)
        app.screen.dismiss(older)
        await settle(app, pilot)
        assert app.session.chat_path == older
    kwargs = prepare(_args(), backend=ScriptedBackend([]), counter=tiktoken_counter)
    assert kwargs["session"].chat_path == older


async def test_chat_browser_lists_opens_renames_and_deletes(make_app: Any) -> None:
    app = make_app(ScriptedBackend(["First chat reply.", "Second chat reply."]))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press(*"one", "enter")
        await settle(app, pilot)
        first = app.session.chat_path
        await pilot.press("ctrl+n")
        await pilot.pause()
        await pilot.press("enter")  # the first greeting
        await settle(app, pilot)
        assert app.session.chat_path != first
        await pilot.press(*"two", "enter")
        await settle(app, pilot)
        second = app.session.chat_path
        await pilot.press("ctrl+o")
        await pilot.pause()
        browser = app.screen
        assert isinstance(browser, ChatBrowserScreen)
        rows = {c.path: c for c in browser.chats}
        assert set(rows) == {first, second}
        assert rows[first].messages == 3 and rows[first].last_line == "First chat reply."
        assert rows[first].last_speaker == "Wren Halloway"
        # open the first chat from the list
        table = browser.query_one(DataTable)
        table.move_cursor(row=[c.path for c in browser.chats].index(first))
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.session.chat_path == first
        assert [v.text for v in app.chat_screen.query(MessageView)][-1] == "First chat reply."
        assert isinstance(app.focused, PromptInput)
        # rename the open chat: the session follows the file
        await pilot.press("ctrl+o")
        await pilot.pause()
        app.screen.query_one(DataTable).move_cursor(
            row=[c.path for c in app.screen.chats].index(first))
        await pilot.press("r")
        assert isinstance(app.screen, AskScreen)
        app.screen.query_one(Input).value = "The storm night"
        await pilot.press("enter")
        await pilot.pause()
        renamed = first.with_name("The storm night.jsonl")
        assert renamed.exists() and not first.exists() and app.session.chat_path == renamed
        # delete the other one: asks first
        browser = app.screen
        browser.query_one(DataTable).move_cursor(
            row=[c.path for c in browser.chats].index(second))
        await pilot.press("d")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await pilot.pause()
        assert not second.exists()
        assert [c.path for c in list_chats(chat_folder("Wren Halloway"))] == [renamed]
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press(*"typing")
        assert app.chat_screen.query_one(PromptInput).value == "typing"
        await app.chat_screen.reload()
        await pilot.press(*"x")
        assert load_chat(renamed).chat.messages[-1].text == "First chat reply."


async def test_branch_from_an_earlier_message(make_app: Any) -> None:
    app = make_app(ScriptedBackend(["Reply one.", "Reply two."]))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        for text in ("one", "two"):
            await pilot.press(*text, "enter")
            await settle(app, pilot)
        parent = app.session.chat_path
        parent_text = parent.read_bytes()
        views = list(app.chat_screen.query(MessageView))
        views[2].focus()  # "Reply one."
        await pilot.press("b")
        await settle(app, pilot)
        branch = app.session.chat_path
        assert branch != parent and branch.parent == parent.parent
        assert branch.name.startswith("Branch #2")
        on_disk = load_chat(branch).chat
        assert [m.text for m in on_disk.messages][1:] == ["one", "Reply one."]
        assert on_disk.header is not None and on_disk.header.chat_metadata[PARENT_KEY] == parent.stem
        assert parent.read_bytes() == parent_text  # the original is untouched
        assert isinstance(app.focused, PromptInput)
        info = {c.path: c for c in list_chats(parent.parent)}
        assert info[branch].parent == parent.stem


async def test_a_group_chat_opens_with_every_members_greeting(make_app: Any, cards_dir: Path) -> None:
    app = make_app(ScriptedBackend([]), roster=str(cards_dir / "skerry-light.roster.yaml"))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        s = app.session
        firsts = [m for m in s.chat.messages]
        names = [m.name for m in firsts]
        with_greeting = [c.data.name for c in s.cast.cards
                         if c.data.name not in s.muted and (c.data.first_mes or
                                                             c.data.alternate_greetings)]
        assert names == with_greeting and len(names) >= 2
        for m, card in zip(firsts, [c for c in s.cast.cards if c.data.name in names], strict=True):
            options = [g for g in (card.data.first_mes, *card.data.alternate_greetings,
                                   *card.data.group_only_greetings) if g.strip()]
            assert m.text in options and m.swipes == options
        shown = [v.speaker for v in app.chat_screen.query(MessageView)]
        assert shown == names
        assert [m.name for m in load_chat(s.chat_path).chat.messages] == names
