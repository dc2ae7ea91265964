"""Group chats (a round by the roster's strategy, picking the speaker, muting) and importing files
(a bad card is refused with a clear message, a real SillyTavern card and preset come in)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from _scripted import ScriptedBackend
from textual.widgets import Input, Static

from rp_context.chat import load_chat
from tui.screens import ImportScreen, PickScreen
from tui.widgets import MessageView, RosterList


async def settle(app: Any, pilot: Any) -> None:
    for _ in range(2):
        await app.workers.wait_for_complete()
        await pilot.pause()


async def test_group_round_follows_the_roster_and_muting_is_saved(make_app: Any, cards_dir: Path) -> None:
    backend = ScriptedBackend([f"Line {i}." for i in range(10)])
    app = make_app(backend, roster=str(cards_dir / "skerry-light.roster.yaml"))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        session = app.session
        assert session.is_group and len(session.members) == 3
        expected = session.next_speakers(user_typed=False)
        assert expected
        before = len(session.chat.messages)
        await pilot.press("ctrl+g")
        await settle(app, pilot)
        new = session.chat.messages[before:]
        assert [m.name for m in new] == expected
        assert [v.speaker for v in app.screen.query(MessageView)][before:] == expected
        # mute Absalom from the roster list in the side panel
        roster = app.screen.query_one(RosterList)
        roster.focus()
        roster.highlighted = session.members.index("Absalom Pike")
        await pilot.press("enter")
        await pilot.pause()
        assert session.muted == ["Absalom Pike"]
        header = load_chat(session.chat_path).chat.header
        assert header.chat_metadata["rp_context_muted"] == ["Absalom Pike"]
        for _ in range(3):  # muted members never speak on their own
            assert "Absalom Pike" not in session.next_speakers(user_typed=False)
            session.send("And you?")
        # ...but speak when picked
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, PickScreen)
        app.screen.query_one("#pick-list").highlighted = session.members.index("Absalom Pike")
        await pilot.press("enter")
        await settle(app, pilot)
        assert session.chat.messages[-1].name == "Absalom Pike"
        assert load_chat(session.chat_path).chat.messages[-1].name == "Absalom Pike"


async def test_a_bad_card_is_refused_with_a_clear_message(make_app: Any, tmp_path: Path,
                                                          data_home: Path) -> None:
    bad = tmp_path / "broken.json"
    bad.write_text('{"spec": "chara_card_v2", "data": {"name": "Half', encoding="utf-8")
    app = make_app(ScriptedBackend([]))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("f6")
        assert isinstance(app.screen, ImportScreen)
        app.screen.query_one(Input).value = str(bad)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ImportScreen)  # still open, showing why
        message = str(app.screen.query_one("#import-error", Static).render())
        assert message.startswith("Not imported: ") and str(bad) in message
        assert not (data_home / "cards").exists()
        app.screen.query_one(Input).value = str(tmp_path / "missing.png")
        await pilot.press("enter")
        await pilot.pause()
        assert "no such file" in str(app.screen.query_one("#import-error", Static).render())
        await pilot.press("escape")
        assert app.session.members == ["Wren Halloway"]


async def test_importing_a_sillytavern_card_opens_it(make_app: Any, reference_dir: Path,
                                                     data_home: Path) -> None:
    src = reference_dir / "sillytavern" / "cards" / "default_Seraphina.png"
    app = make_app(ScriptedBackend([]))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("f6")
        app.screen.query_one(Input).value = str(src)
        await pilot.press("enter")
        await settle(app, pilot)
        copy = data_home / "cards" / "default_Seraphina.png"
        assert copy.read_bytes() == src.read_bytes()
        assert app.session.members == ["Seraphina"]
        assert Path(app.session.chat_path).parent.name == "Seraphina"
        assert list(app.screen.query(MessageView))[0].speaker == "Seraphina"


async def test_importing_a_sillytavern_preset(make_app: Any, reference_dir: Path, data_home: Path) -> None:
    src = reference_dir / "sillytavern" / "instruct" / "ChatML.json"
    app = make_app(ScriptedBackend([]))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("f6")
        app.screen.query_one(Input).value = str(src)
        await pilot.press("enter")
        await pilot.pause()
        written = list((data_home / "presets").rglob("ChatML.yaml"))
        assert [p.parent.name for p in written] == ["instruct"]
        assert json.loads(src.read_text())["input_sequence"] in written[0].read_text()
        # the same name again is refused, the first copy untouched
        before = written[0].read_bytes()
        await pilot.press("f6")
        app.screen.query_one(Input).value = str(src)
        await pilot.press("enter")
        await pilot.pause()
        assert "exists already" in str(app.screen.query_one("#import-error", Static).render())
        assert written[0].read_bytes() == before


def test_mutes_are_kept_with_the_chat(tiktoken_counter: Any, cards_dir: Path, tmp_path: Path) -> None:
    from rp_context.session import ChatSession

    roster = cards_dir / "skerry-light.roster.yaml"
    chat = tmp_path / "skerry.jsonl"
    first = ChatSession.open(roster=roster, chat_path=chat, backend=ScriptedBackend([]),
                             counter=tiktoken_counter)
    assert first.muted == []
    first.set_muted("Tobias Marrow")
    again = ChatSession.open(roster=roster, chat_path=chat, backend=ScriptedBackend([]),
                             counter=tiktoken_counter)
    assert again.muted == ["Tobias Marrow"]
    again.set_muted("Tobias Marrow", False)
    assert ChatSession.open(roster=roster, chat_path=chat, backend=ScriptedBackend([]),
                            counter=tiktoken_counter).muted == []


async def test_pickers_show_where_each_card_comes_from(make_app: Any) -> None:
    app = make_app(ScriptedBackend([]))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("f3")
        assert isinstance(app.screen, PickScreen)
        shown = app.export_screenshot()  # what is drawn: "[sample]" is text, not markup
        assert "[sample]" in shown and "Halloway&#160;&#160;[sample]" in shown
