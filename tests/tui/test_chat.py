"""Behaviour of the chat screen against the scripted backend on the real ChatSession: streaming,
stop, swipes, edit, delete, continue, impersonate, new chat from a greeting; all saved to disk."""

from __future__ import annotations

import threading
from typing import Any

from _scripted import ScriptedBackend
from textual.widgets import TextArea

from rp_context.chat import load_chat
from tui.screens import ConfirmScreen, EditScreen, PickScreen
from tui.widgets import MessageView, PromptInput


def views(app: Any) -> list[MessageView]:
    return list(app.screen.query(MessageView))


async def settle(app: Any, pilot: Any) -> None:
    await app.workers.wait_for_complete()
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


def saved(app: Any) -> list[Any]:
    """The messages as they are in the chat file right now."""
    return load_chat(app.session.chat_path).chat.messages


async def test_reply_streams_in_and_is_saved(make_app: Any) -> None:
    backend = ScriptedBackend(["*She pours.* Aye, drink the **tea**.", "Second."])
    app = make_app(backend)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press(*"Hello", "enter")
        await settle(app, pilot)
        shown = views(app)
        assert [v.speaker for v in shown] == ["Wren Halloway", "User", "Wren Halloway"]
        assert shown[-1].text == "*She pours.* Aye, drink the **tea**."
        assert "Hello" in app.session.last_fitted.text
        # the prompt the backend ran is the session's fitted prompt, token for token
        assert list(backend.prompts[-1].ids) == app.session.last_fitted.ids
        on_disk = saved(app)
        assert [(m.role, m.text) for m in on_disk[1:]] == [
            ("user", "Hello"), ("assistant", "*She pours.* Aye, drink the **tea**.")]
        # empty Enter lets the character go on
        await pilot.press("enter")
        await settle(app, pilot)
        assert [m.text for m in saved(app)][-1] == "Second."


async def test_escape_stops_the_reply_and_keeps_what_came(make_app: Any) -> None:
    gate = threading.Event()
    backend = ScriptedBackend(["Aye, drink the tea while it is hot."], gate=gate, hold_after=2)
    app = make_app(backend)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press(*"Hi", "enter")
        while not backend.started.is_set():
            await pilot.pause(0.02)
        await pilot.pause(0.1)
        screen = app.screen
        assert screen.generating
        assert views(app)[-1].text.startswith("Aye,")  # streamed in before the reply ended
        await pilot.press("x")  # the UI is not blocked while the worker streams
        assert app.screen.query_one(PromptInput).value == "x"
        await pilot.press("escape")
        gate.set()
        await settle(app, pilot)
        assert not screen.generating
        assert views(app)[-1].text == "Aye, drink"
        assert saved(app)[-1].text == "Aye, drink"
        assert app.session.last_metrics.stop_reason == "cancelled"


async def test_swipes_generate_keep_and_switch(make_app: Any) -> None:
    app = make_app(ScriptedBackend(["First answer.", "Second answer."]))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press(*"Hi", "enter")
        await settle(app, pilot)
        await pilot.press("right")  # past the last swipe: a new one is generated
        await settle(app, pilot)
        last = views(app)[-1]
        assert (last.text, last.swipe) == ("Second answer.", (1, 2))
        assert len(views(app)) == 3
        await pilot.press("left")
        await pilot.pause()
        assert (views(app)[-1].text, views(app)[-1].swipe) == ("First answer.", (0, 2))
        m = saved(app)[-1]
        assert (m.swipes, m.swipe_id, m.text) == (["First answer.", "Second answer."], 0, "First answer.")
        await pilot.press("left")  # nothing before the first swipe: no change, no generation
        await settle(app, pilot)
        assert views(app)[-1].text == "First answer."


async def test_edit_and_delete_a_message(make_app: Any) -> None:
    app = make_app(ScriptedBackend(["A reply to edit."]))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press(*"Hi", "enter")
        await settle(app, pilot)
        await pilot.press("up")  # empty prompt: up goes to the last message
        assert app.focused is views(app)[-1]
        await pilot.press("e")
        assert isinstance(app.screen, EditScreen)
        app.screen.query_one(TextArea).text = "An edited reply."
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert views(app)[-1].text == "An edited reply."
        assert saved(app)[-1].text == "An edited reply."
        views(app)[1].focus()  # the user's "Hi"
        await pilot.press("d")
        assert isinstance(app.screen, ConfirmScreen)  # deleting asks once
        await pilot.press("y")
        await pilot.pause()
        assert [v.text for v in views(app)][1:] == ["An edited reply."]
        assert [m.text for m in saved(app)][1:] == ["An edited reply."]


async def test_continue_and_impersonate(make_app: Any) -> None:
    app = make_app(ScriptedBackend(["She sets the mug down.", "and laughs.", "I take the mug."]))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press(*"Hi", "enter")
        await settle(app, pilot)
        await pilot.press("ctrl+t")
        await settle(app, pilot)
        assert saved(app)[-1].text == "She sets the mug down.and laughs."
        assert views(app)[-1].text == "She sets the mug down.and laughs."
        await pilot.press("ctrl+y")
        await settle(app, pilot)
        assert app.screen.query_one(PromptInput).value == "I take the mug."
        assert len(saved(app)) == 3  # impersonation writes nothing to the chat


async def test_new_chat_from_an_alternate_greeting(make_app: Any) -> None:
    app = make_app(ScriptedBackend([]))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        old_path = app.session.chat_path
        greetings = app.session.greetings
        assert len(greetings) == 2
        await pilot.press("ctrl+n")
        assert isinstance(app.screen, PickScreen)
        await pilot.press("down", "enter")
        await settle(app, pilot)
        assert app.session.chat_path != old_path and old_path.exists()
        first = saved(app)[0]
        assert (first.text, first.swipe_id, first.swipes) == (greetings[1], 1, greetings)
        assert views(app)[0].swipe == (1, 2)
        assert views(app)[0].text == app.session.display_text(first)
        assert "{{user}}" not in views(app)[0].text
