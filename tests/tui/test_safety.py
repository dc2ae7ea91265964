"""Nothing lost by a stray key: message actions need an explicitly selected message, focus goes
back to the message box after every dialog, deleting asks once, actions on a vanished message are
a notice, an unexpected error is logged and ends the app non-zero; settings cannot lock you out."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest
from _scripted import ScriptedBackend
from textual.widgets import Input, Static, TextArea

from rp_context.chat import load_chat
from tui.__main__ import parser, prepare
from tui.app import RPChatApp
from tui.config import Settings, load_settings, settings_path
from tui.screens import ConfirmScreen, EditScreen, SettingsScreen
from tui.widgets import MessageView, PromptInput


def views(app: Any) -> list[MessageView]:
    return list(app.chat_screen.query(MessageView))


async def settle(app: Any, pilot: Any) -> None:
    for _ in range(2):
        await app.workers.wait_for_complete()
        await pilot.pause()


def saved(app: Any) -> list[Any]:
    return load_chat(app.session.chat_path).chat.messages


async def test_double_delete_asks_once_and_never_crashes(make_app: Any) -> None:
    app = make_app(ScriptedBackend(["A reply."]))
    notices: list[str] = []
    notify = app.notify
    app.notify = lambda message, **kw: (notices.append(str(message)), notify(message, **kw))[1]
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press(*"Hi", "enter")
        await settle(app, pilot)
        await pilot.press("up")
        assert app.focused is views(app)[-1]
        await pilot.press("d", "d")  # the second d lands on the question, not on another message
        assert isinstance(app.screen, ConfirmScreen)
        assert len(saved(app)) == 3  # nothing deleted before the answer
        await pilot.press("n")
        await pilot.pause()
        assert len(saved(app)) == 3 and isinstance(app.focused, PromptInput)
        await pilot.press("up", "d", "y")
        await pilot.pause()
        assert [m.text for m in saved(app)] == [saved(app)[0].text, "Hi"]
        # an action on a message that no longer exists is a notice, not a crash
        await app.chat_screen.message_action(MessageView.Action("2", "delete"))  # deleted above
        gone = app.session.chat.messages[-1].id
        app.session.delete(gone)
        await app.chat_screen.message_action(MessageView.Action(gone, "edit"))
        await app.chat_screen.delete(gone)
        await pilot.pause()
        assert app.return_code is None and app.is_running
        assert sum("no longer in the chat" in n for n in notices) == 3


async def test_typing_after_an_edit_goes_to_the_message_box(make_app: Any) -> None:
    app = make_app(ScriptedBackend(["Absalom's reply."]))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press(*"Hi", "enter")
        await settle(app, pilot)
        await pilot.press("up", "e")
        assert isinstance(app.screen, EditScreen)
        app.screen.query_one(TextArea).text = "Edited."
        await pilot.press("ctrl+s")
        await pilot.pause()
        await pilot.press(*"Tobias, did you bring the mail?")
        assert app.chat_screen.query_one(PromptInput).value == "Tobias, did you bring the mail?"
        assert [m.text for m in saved(app)][1:] == ["Hi", "Edited."]  # no `d` deleted anything


async def test_typing_after_the_palette_goes_to_the_message_box(make_app: Any) -> None:
    app = make_app(ScriptedBackend(["A reply."]))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press(*"Hi", "enter")
        await settle(app, pilot)
        await pilot.press("up")
        assert isinstance(app.focused, MessageView)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press(*"did you")
        assert app.chat_screen.query_one(PromptInput).value == "did you"
        assert len(saved(app)) == 3


async def test_an_unexpected_error_is_logged_and_exits_non_zero(make_app: Any,
                                                                data_home: Path) -> None:
    app = make_app(ScriptedBackend([]))

    def boom() -> None:
        raise ValueError("a bug in a key handler")

    with pytest.raises(ValueError):
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            chat = app.session.chat_path
            app.chat_screen.call_later(boom)  # as if a key handler had a bug
            await pilot.pause()
    assert app.return_code == 1
    log = (data_home / "logs" / "rp-chat.log").read_text(encoding="utf-8")
    assert "a bug in a key handler" in log and "Traceback" in log
    assert app.crash_log == data_home / "logs" / "rp-chat.log"
    assert load_chat(chat).chat.messages  # the chat on disk is whole


async def test_a_bad_model_path_in_settings_is_not_saved(make_app: Any, tmp_path: Path) -> None:
    not_gguf = tmp_path / "notes.txt"
    not_gguf.write_text("hello", encoding="utf-8")
    app = make_app(ScriptedBackend([]))
    app.save_settings_file = True
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("f7")
        assert isinstance(app.screen, SettingsScreen)
        app.screen.query_one("#set-model", Input).value = str(not_gguf)
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, SettingsScreen)  # still open, saying why
        assert "GGUF" in str(app.screen.query_one("#settings-error", Static).render())
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.focused, PromptInput)
    assert app.settings.model is None and not settings_path().exists()


def _args(*argv: str) -> argparse.Namespace:
    return parser().parse_args(list(argv))


async def test_broken_settings_start_anyway_and_offer_the_fix(tiktoken_counter: Any,
                                                              tmp_path: Path) -> None:
    settings_path().parent.mkdir(parents=True, exist_ok=True)
    settings_path().write_text(f"model: {tmp_path / 'gone.gguf'}\ncontext: 2048\n", encoding="utf-8")
    kwargs = prepare(_args(), backend=ScriptedBackend([]), counter=tiktoken_counter)
    assert kwargs["settings"].model is None and kwargs["settings"].context == 2048
    assert "gone.gguf" in kwargs["problems"][0]
    app = RPChatApp(**kwargs, save_settings_file=True, cursor_blink=False)
    app.first_run_help = False
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, SettingsScreen)
        assert "gone.gguf" in str(app.screen.query_one("#settings-problem", Static).render())
        await pilot.press("ctrl+s")  # save the fixed settings (model: default)
        await settle(app, pilot)
    assert load_settings() == Settings(context=2048)
    assert "gone.gguf" in settings_path().with_name("settings.yaml.broken").read_text()
    # a file that is not even YAML: the app starts on defaults and says so
    settings_path().write_text("context: [unclosed\n", encoding="utf-8")
    kwargs = prepare(_args(), backend=ScriptedBackend([]), counter=tiktoken_counter)
    assert kwargs["settings"] == Settings() and "settings.yaml" in kwargs["problems"][0]


async def test_up_and_down_move_between_messages(make_app: Any) -> None:
    app = make_app(ScriptedBackend(["A reply."]))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press(*"Hi", "enter")
        await settle(app, pilot)
        shown = views(app)
        await pilot.press("up", "up", "up")
        assert app.focused is shown[0]
        await pilot.press("up")  # the first stays selected
        assert app.focused is shown[0]
        await pilot.press("down")
        assert app.focused is shown[1]
        await pilot.press("down", "down")  # past the newest: back to typing
        assert isinstance(app.focused, PromptInput)
