"""What a SillyTavern user looks for: a multi-line message box, a persona of their own, the card
editor (live token counts, budget following, lossless save), the author's note, reply length and
sampler preset, per-message tokens and times, coloured dialogue, reading progress, "stopped",
the side panel folding on narrow terminals, help, and the newest message kept in view."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from _scripted import ScriptedBackend
from textual.widgets import Input, Select, Static, TextArea

from rp_context.cards import load_card
from rp_context.chat import load_chat
from rp_context.chatfolder import author_note_of
from tui.screens import HelpScreen, PickScreen, SettingsScreen
from tui.screens.editors import AuthorNoteScreen, CardEditorScreen, PersonaScreen
from tui.widgets import MessageView, PromptInput, rp_text
from tui.widgets.message import ACTION_STYLE, DIALOGUE_STYLE


async def settle(app: Any, pilot: Any) -> None:
    for _ in range(3):
        await app.workers.wait_for_complete()
        await pilot.pause()


def views(app: Any) -> list[MessageView]:
    return list(app.chat_screen.query(MessageView))


async def test_multi_line_message(make_app: Any) -> None:
    app = make_app(ScriptedBackend(["Two lines, aye."]))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press(*"First paragraph.", "ctrl+j", *"Second.", "shift+enter", *"Third.")
        assert app.chat_screen.query_one(PromptInput).value == "First paragraph.\nSecond.\nThird."
        await pilot.press("enter")
        await settle(app, pilot)
        sent = load_chat(app.session.chat_path).chat.messages[-2]
        assert sent.text == "First paragraph.\nSecond.\nThird."
        assert app.chat_screen.query_one(PromptInput).value == ""


async def test_create_a_persona_and_use_it(make_app: Any, data_home: Path) -> None:
    app = make_app(ScriptedBackend([]))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("f5")
        assert isinstance(app.screen, PickScreen)
        app.screen.dismiss("+new")
        await pilot.pause()
        assert isinstance(app.screen, PersonaScreen)
        app.screen.query_one("#persona-name", Input).value = "Tess"
        app.screen.query_one("#persona-description", TextArea).text = "A sailor with a bad knee."
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert app.session.user == "Tess"
        assert app.session.cast.persona.description == "A sailor with a bad knee."
        assert (data_home / "personas" / "Tess.persona.yaml").exists()
        assert "A sailor with a bad knee." in app.session.prompt().text
        assert isinstance(app.focused, PromptInput)


async def test_card_editor_counts_tokens_updates_the_budget_and_saves_a_copy(
        make_app: Any, data_home: Path, cards_dir: Path) -> None:
    app = make_app(ScriptedBackend([]))
    sample = (cards_dir / "wren-halloway.json").read_bytes()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("f8")
        await settle(app, pilot)
        editor = app.screen
        assert isinstance(editor, CardEditorScreen)
        label = str(editor.query_one("#label-scenario").render())
        before_card = editor.query_one("#card-budget-title", Static).render()
        scenario = editor.query_one("#field-scenario", TextArea)
        extra = " The fog horn has been silent for three days, and nobody knows why." * 5
        scenario.text = scenario.text + extra
        await pilot.pause(0.5)
        await settle(app, pilot)
        after_label = str(editor.query_one("#label-scenario").render())
        assert after_label != label and "tokens" in after_label
        n_extra = app.session.counter.count(extra)
        old_n = int(label.split("·")[1].split()[0].replace(",", ""))
        new_n = int(after_label.split("·")[1].split()[0].replace(",", ""))
        assert new_n - old_n in range(n_extra - 2, n_extra + 3)
        assert str(editor.query_one("#card-budget-title", Static).render()) != str(before_card)
        await pilot.press("ctrl+s")
        await settle(app, pilot)
    copy = data_home / "cards" / "wren-halloway.json"
    assert (cards_dir / "wren-halloway.json").read_bytes() == sample  # the sample is untouched
    edited = load_card(copy).card
    original = load_card(cards_dir / "wren-halloway.json").card
    assert edited.data.scenario == original.data.scenario + extra
    # lossless: everything else, unknown keys included, is as it was
    assert edited.data.model_copy(update={"scenario": original.data.scenario}) == original.data
    assert app.spec.cards == (str(copy),)


async def test_author_note_is_kept_with_the_chat_and_reaches_the_prompt(make_app: Any) -> None:
    app = make_app(ScriptedBackend([]))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("f9")
        assert isinstance(app.screen, AuthorNoteScreen)
        app.screen.query_one("#note-text", TextArea).text = "Keep the storm raging."
        app.screen.query_one("#note-depth", Input).value = "1"
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert "Keep the storm raging." in app.session.prompt().text
        meta = load_chat(app.session.chat_path).chat.header.chat_metadata
        assert meta["note_prompt"] == "Keep the storm raging." and meta["note_depth"] == 1
        assert isinstance(app.focused, PromptInput)
    assert author_note_of(load_chat(app.session.chat_path).chat).text == "Keep the storm raging."


async def test_reply_length_and_sampler_preset_apply_without_reopening(make_app: Any) -> None:
    backend = ScriptedBackend(["Short."])
    app = make_app(backend)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("f7")
        assert isinstance(app.screen, SettingsScreen)
        app.screen.query_one("#set-reply", Input).value = "120"
        app.screen.query_one("#set-sampler", Select).value = "deterministic"
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert app.settings.reply_length == 120 and app.settings.sampler == "deterministic"
        sampler = app.session.setup.sampler
        assert sampler.max_tokens == 120 and sampler.temperature == 0.0
        assert app.session.backend is backend  # no model reload for this
        await pilot.press(*"Hi", "enter")
        await settle(app, pilot)
        assert app.session.last_fitted.report.reserve == 120


async def test_messages_show_tokens_time_and_coloured_dialogue(make_app: Any) -> None:
    app = make_app(ScriptedBackend(['*She nods.* "Aye," she says.']))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press(*"Hi", "enter")
        await settle(app, pilot)
        last = views(app)[-1]
        n = app.session.counter.count('*She nods.* "Aye," she says.')
        assert f"{n} tok" in last.meta
        stamp = app.session.chat.messages[-1].timestamp
        assert f"{stamp:%H:%M}" in last.meta
    text = rp_text('*She nods.* "Aye," she says.')
    styles = {text.plain[s.start:s.end]: str(s.style) for s in text.spans}
    assert styles == {"*She nods.*": ACTION_STYLE, '"Aye,"': DIALOGUE_STYLE}


async def test_a_stopped_reply_is_marked_and_progress_shows(make_app: Any) -> None:
    gate, reading = threading.Event(), threading.Event()
    backend = ScriptedBackend(["Aye, drink the tea while it is hot."], gate=gate, hold_after=2,
                              reading_gate=reading)
    app = make_app(backend)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press(*"Hi", "enter")
        screen = app.chat_screen
        label = screen.query_one("#reading-label", Static)
        while " of " not in str(label.render()):  # the backend reports a quarter read
            await pilot.pause(0.02)
        total = len(backend.prompts[-1].ids)
        assert screen.query_one("#reading").display
        assert f"{total // 4:,} of {total:,} tokens" in str(label.render())
        assert screen.query_one("#reading-bar").percentage == (total // 4) / total
        reading.set()
        while not backend.started.is_set():
            await pilot.pause(0.02)
        await pilot.pause(0.1)
        assert not screen.query_one("#reading").display  # text is coming: the bar is gone
        await pilot.press("escape")
        gate.set()
        await settle(app, pilot)
        assert "stopped" in views(app)[-1].meta
        saved = load_chat(app.session.chat_path).chat.messages[-1]
        assert saved.text == "Aye, drink" and saved.extra.get("rp_context_stopped") is True
        # unhooked after the turn
        assert getattr(app.session, "on_progress", None) is None
        assert backend.progress_callback is None


async def test_narrow_terminal_folds_the_panel_and_keeps_the_newest_in_view(make_app: Any) -> None:
    app = make_app(ScriptedBackend([f"Reply {i}. " + "Words " * 40 for i in range(6)]))
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        assert app.chat_screen.query_one("#side").display
        for i in range(6):
            await pilot.press(*f"Line {i}", "enter")
            await settle(app, pilot)
        await pilot.resize_terminal(80, 24)
        await settle(app, pilot)
        screen = app.chat_screen
        assert not screen.query_one("#side").display
        log = screen.query_one("#log")
        assert log.max_scroll_y > 0 and log.scroll_y == log.max_scroll_y  # newest in view
        await pilot.press("ctrl+b")  # the user can still open it
        assert screen.query_one("#side").display
        await pilot.resize_terminal(160, 48)
        await settle(app, pilot)
        assert screen.query_one("#side").display


async def test_help_screen_and_first_run(make_app: Any) -> None:
    app = make_app(ScriptedBackend([]))
    app.first_run_help = True
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen) and app.screen.first_run
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.focused, PromptInput)
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen) and not app.screen.first_run
        await pilot.press("escape")
        await pilot.press(*"what?")  # ? is text while typing
        assert app.chat_screen.query_one(PromptInput).value == "what?"
    from tui.config import load_state

    assert load_state().seen_help


async def test_keys_can_be_remapped_in_settings(tiktoken_counter: Any) -> None:
    from tui.app import RPChatApp
    from tui.config import Settings
    from tui.sessions import ChatSpec

    app = RPChatApp(spec=ChatSpec(), settings=Settings(keys={"regenerate": "ctrl+e"}),
                    backend=ScriptedBackend(["First.", "Second."]), counter=tiktoken_counter,
                    save_settings_file=False, cursor_blink=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press(*"Hi", "enter")
        await settle(app, pilot)
        await pilot.press("ctrl+e")
        await settle(app, pilot)
        assert app.session.chat.messages[-1].swipes == ["First.", "Second."]


async def test_memory_shows_in_the_side_panel_and_can_be_edited(make_app: Any) -> None:
    from tui.screens import EditScreen
    from tui.widgets import MemoryPanel

    app = make_app(ScriptedBackend(["Aye."]))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press(*"Hi", "enter")
        await settle(app, pilot)
        panel = app.chat_screen.query_one(MemoryPanel)
        assert "No memory yet" in str(panel.query_one("#memory-text").render())
        app.chat_screen.action_edit_memory()
        await pilot.pause()
        assert isinstance(app.screen, EditScreen)  # the session's set_memory writes it
        app.screen.query_one(TextArea).text = "Tess washed ashore; Wren took her in."
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert "Tess washed ashore" in str(panel.query_one("#memory-text").render())
        stored = [m.extra.get("memory") for m in load_chat(app.session.chat_path).chat.messages]
        assert "Tess washed ashore; Wren took her in." in stored
        assert isinstance(app.focused, PromptInput)


async def test_reasoning_folds_under_the_reply(make_app: Any) -> None:
    from textual.widgets import Collapsible

    app = make_app(ScriptedBackend(["<think>She is cold; offer tea.</think>Drink this."]))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press(*"Hi", "enter")
        await settle(app, pilot)
        m = app.session.chat.messages[-1]
        assert m.text == "Drink this." and m.extra["reasoning"] == "She is cold; offer tea."
        view = views(app)[-1]
        block = view.query_one(Collapsible)
        assert block.collapsed and "Reasoning" in block.title
        assert view.text == "Drink this."


async def test_a_reopened_long_chat_says_its_memory_is_in_the_next_prompt(tiktoken_counter: Any, repo_dir: Path,
                                                                          tmp_path: Path) -> None:
    """Before any reply, the panel judges the memory by the preview of the next prompt."""
    from rp_context.chat import save_chat
    from rp_context.memory import store_memory
    from rp_context.synth import synthetic_chat
    from tui.app import RPChatApp
    from tui.config import Settings
    from tui.sessions import ChatSpec
    from tui.widgets import MemoryPanel

    chat = synthetic_chat(40, seed=4)
    store_memory(chat, "Tess washed ashore; Wren took her in.", covers=chat.messages[9].id, front=0)
    path = tmp_path / "long.jsonl"
    save_chat(chat, path)
    app = RPChatApp(spec=ChatSpec(cards=(str(repo_dir / "cards" / "wren-halloway.json"),), chat=path),
                    settings=Settings(context=1024, reply_length=64), backend=ScriptedBackend(["Aye."]),
                    counter=tiktoken_counter, save_settings_file=False, cursor_blink=False)
    async with app.run_test(size=(140, 44)) as pilot:
        await settle(app, pilot)
        await pilot.pause(0.5)
        assert app.chat_screen.preview is not None and app.chat_screen.preview.report.memory is not None
        title = str(app.chat_screen.query_one(MemoryPanel).query_one(".title", Static).render())
        assert title == "Memory · 10 messages · in the prompt"
