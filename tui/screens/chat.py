"""The chat screen: messages, the message box, the side panel (budget, group, memory); generation
runs in a thread worker that posts typed messages (`tui.messages`) and never touches a widget.

All prompt and chat logic is the library's ChatSession: this screen sends, asks for replies,
swipes, edits, deletes and branches through it, and shows what it reports. Message actions need
an explicitly selected message (the message box is not focused then), and after every dialog the
focus goes back to the message box, so typing never lands on a message.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, ProgressBar, Static
from textual.worker import Worker, WorkerState, get_current_worker

from rp_context.cards import load_card
from rp_context.errors import RPContextError

from ..crashlog import report_error
from ..messages import (
    PreviewFailed,
    PreviewReady,
    ReadingProgress,
    RepliesDone,
    ReplyChunk,
    ReplyEnded,
    ReplyFailed,
    ReplyStarted,
    ReplyThinking,
)
from ..widgets import BudgetPanel, CardPicture, MemoryPanel, MessageView, PromptInput, RosterList
from .editors import AuthorNoteScreen, CardEditorScreen, card_path_of
from .inspector import InspectorScreen
from .modals import ConfirmScreen, EditScreen, PickScreen

if TYPE_CHECKING:
    from rp_context.budget import BudgetReport, FittedPrompt
    from rp_context.chat import ChatMessage
    from rp_context.session import ChatSession, Turn, TurnKind

    from ..config import Settings
    from ..sessions import ChatSpec

__all__ = ["ChatScreen", "FLUSH_SECONDS", "NARROW", "STOPPED_KEY"]

FLUSH_SECONDS = 0.05
"""Streamed text reaches the screen at most every 50 ms (about 20 updates a second)."""
NARROW = 100
"""Below this many columns the side panel folds away (ctrl+b brings it back)."""
STOPPED_KEY = "rp_context_stopped"
"""Set in a reply's `extra` when the user stopped it, so the cut shows after a restart too."""


class ChatScreen(Screen[None]):
    """Talk to a character or a group. Esc stops a reply; F1 lists every key."""

    BINDINGS = [
        Binding("escape", "stop", "Stop", show=False, id="stop"),
        Binding("f1", "app.help", "Help", id="help"),
        Binding("question_mark", "app.help", "Help", show=False),
        Binding("ctrl+o", "app.browse_chats", "Chats", id="chats"),
        Binding("ctrl+r", "regenerate", "Regen", id="regenerate"),
        Binding("ctrl+n", "new_chat", "New", id="new_chat"),
        Binding("f2", "inspector", "Prompt", id="inspector"),
        Binding("f7", "app.settings", "Settings", id="settings"),
        Binding("ctrl+t", "continue_reply", "Continue", show=False, id="continue"),
        Binding("ctrl+y", "impersonate", "Impersonate", show=False, id="impersonate"),
        Binding("ctrl+g", "group_round", "Group round", show=False, id="group_round"),
        Binding("ctrl+s", "pick_speaker", "Speaker", show=False, id="pick_speaker"),
        Binding("f3", "app.pick_cast", "Cards", show=False, id="pick_cast"),
        Binding("f4", "app.pick_preset", "Preset", show=False, id="pick_preset"),
        Binding("f5", "app.pick_persona", "Persona", show=False, id="pick_persona"),
        Binding("f6", "app.import_file", "Import", show=False, id="import"),
        Binding("f8", "edit_card", "Edit card", show=False, id="edit_card"),
        Binding("f9", "author_note", "Author's note", show=False, id="author_note"),
        Binding("ctrl+b", "toggle_panel", "Panel", show=False, id="toggle_panel"),
    ]
    # The message box is a TextArea, which binds f6, f7 and ctrl+y itself: the screen's keys
    # win (but Esc, and ? which is typed as text, go to the focused widget first).
    BINDINGS = [b if b.key in ("escape", "question_mark") else replace(b, priority=True)
                for b in BINDINGS]

    class NewChatRequested(Message):
        """The user wants a new chat opening with greeting number `greeting` (the app makes it)."""

        def __init__(self, greeting: int) -> None:
            super().__init__()
            self.greeting = greeting

    class BranchRequested(Message):
        """The user wants a new chat branched at `message_id` (the app makes and opens it)."""

        def __init__(self, message_id: str) -> None:
            super().__init__()
            self.message_id = message_id

    class ReopenRequested(Message):
        """The chat should open again from `spec` (e.g. with an edited card); the app opens it."""

        def __init__(self, spec: ChatSpec) -> None:
            super().__init__()
            self.spec = spec

    def __init__(self, session: ChatSession, spec: ChatSpec, settings: Settings, *,
                 cursor_blink: bool = True) -> None:
        """The screen shows `session` (opened from `spec`) until `reload` hands it another."""
        super().__init__()
        self.session = session
        self.spec = spec
        self.settings = settings
        self.cursor_blink = cursor_blink
        self.generating = False
        self.preview: FittedPrompt | None = None
        self._turn: Turn | None = None
        self._view: MessageView | None = None
        """Where the current turn streams (None: into the message box, for impersonate)."""
        self._epoch = 0
        self._panel_choice: bool | None = None
        """The user's ctrl+b choice; None: follow the terminal's width."""
        self._pictures: dict[str, bytes | None] = {}

    # -- layout ------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="main"):
            yield VerticalScroll(id="log")
            with VerticalScroll(id="side"):
                yield CardPicture(id="picture")
                yield BudgetPanel(id="budget")
                yield Static("Group", id="roster-title", classes="title")
                yield RosterList(id="roster")
                yield MemoryPanel(id="memory")
                yield Static("", id="status", markup=False)
        with Vertical(id="reading"):
            yield Static("", id="reading-label", markup=False)
            yield ProgressBar(id="reading-bar", show_eta=False)
        yield Static("", id="busy", markup=False)
        yield PromptInput(id="prompt", placeholder="Say something…",
                          newline_key=self.settings.newline_key)
        yield Footer()

    async def on_mount(self) -> None:
        self.query_one("#reading").display = False
        self.busy(None)
        self._fit_panel(self.size.width)
        await self.reload()

    async def reload(self, session: ChatSession | None = None, spec: ChatSpec | None = None,
                     settings: Settings | None = None) -> None:
        """Show `session` (default: the one shown) from scratch, e.g. after opening another chat."""
        self.session = session or self.session
        self.spec = spec or self.spec
        self.settings = settings or self.settings
        self._epoch += 1
        s = self.session
        self.preview = None
        who = ", ".join(s.members)
        self.app.sub_title = f"{who} · you: {s.user} · {s.setup.name or 'default'}"
        prompt = self.query_one(PromptInput)
        prompt.placeholder = f"Message {who}… (Enter sends; ctrl+j new line; ↑ selects a message)"
        prompt.cursor_blink = self.cursor_blink
        log = self.query_one("#log", VerticalScroll)
        await log.remove_children()
        await log.mount_all([self._view_for(m) for m in s.chat.messages])
        log.scroll_end(animate=False)
        self._update_roster()
        self.query_one(BudgetPanel).show(None, None)
        self.query_one(MemoryPanel).show_session(s)
        await self._show_picture()
        for w in s.warnings[-3:]:
            self.notify(w, title="Warning", severity="warning", timeout=8)
        prompt.focus()
        self.refresh_preview()

    def apply_settings(self, settings: Settings) -> None:
        """New settings that need no reopening (reply length, sampler, keys, newline key)."""
        self.settings = settings
        prompt = self.query_one(PromptInput)
        prompt.newline_keys = {"ctrl+j", settings.newline_key}
        self.refresh_preview()

    def _meta(self, m: ChatMessage) -> str:
        parts: list[str] = []
        when = m.timestamp
        if when is not None:
            parts.append(f"{when:%b %d %H:%M}")
        try:
            parts.append(f"{self.session.counter.count(m.text):,} tok")
        except Exception:  # noqa: BLE001 - a count is decoration; never fail a message for it
            pass
        if m.extra.get(STOPPED_KEY):
            parts.append("stopped")
        return " · ".join(parts)

    def _view_for(self, m: ChatMessage) -> MessageView:
        swipe = (m.swipe_id or 0, len(m.swipes)) if m.swipes else None
        view = MessageView(m.id, m.name or m.role, self.session.display_text(m), role=m.role,
                           swipe=swipe, meta=self._meta(m), **_reasoning(m))
        if m.hidden:
            view.add_class("hidden-msg")
        return view

    def _views(self) -> list[MessageView]:
        return list(self.query_one("#log").query(MessageView))

    def _view_of(self, message_id: str) -> MessageView | None:
        return next((v for v in self._views() if v.message_id == message_id), None)

    def _update_roster(self) -> None:
        s = self.session
        roster = self.query_one(RosterList)
        group = s.is_group and s.cast.roster is not None
        roster.display = group
        self.query_one("#roster-title").display = group
        if group:
            roster.set_members(s.members, s.muted)
            activation = s.cast.roster.activation if s.cast.roster else ""
            self.query_one("#roster-title", Static).update(f"Group · {activation} (Enter: mute)")

    def _mark_context(self, report: BudgetReport | None) -> None:
        dropped = set(report.dropped) if report is not None else set()
        for v in self._views():
            v.set_class(v.message_id in dropped, "out-of-context")

    def _status(self, text: str) -> None:
        self.query_one("#status", Static).update(text)

    def busy(self, text: str | None) -> None:
        """Say what the app is loading in the background (None: nothing any more)."""
        line = self.query_one("#busy", Static)
        line.update(f"⏳ {text}" if text else "")
        line.display = bool(text)

    def on_screen_resume(self) -> None:
        """Back from a dialog or the palette: typing goes to the message box again."""
        self.query_one(PromptInput).focus()

    def on_resize(self, event: events.Resize) -> None:
        self._fit_panel(event.size.width)
        if not isinstance(self.focused, MessageView):  # not reading an older message
            self.call_after_refresh(self.query_one("#log", VerticalScroll).scroll_end,
                                    animate=False)

    def _fit_panel(self, width: int) -> None:
        side = self.query_one("#side")
        side.display = self._panel_choice if self._panel_choice is not None else width >= NARROW

    # -- budget preview -------------------------------------------------------------------------
    def refresh_preview(self) -> None:
        if not self.generating:
            self._preview(self._epoch)

    @work(thread=True, exclusive=True, group="preview", exit_on_error=False)
    def _preview(self, epoch: int) -> None:
        """Fit the next prompt off the UI thread; post it (or why it cannot be fitted)."""
        try:
            fitted = self.session.prompt()
        except RPContextError as exc:
            self.post_message(PreviewFailed(str(exc)))
            return
        self.post_message(PreviewReady(fitted, epoch))

    @on(PreviewFailed)
    def _preview_failed(self, event: PreviewFailed) -> None:
        self._status(f"prompt: {event.reason}")

    @on(PreviewReady)
    def _show_preview(self, event: PreviewReady) -> None:
        if event.epoch != self._epoch or self.generating:
            return
        self.preview = event.fitted
        self.query_one(BudgetPanel).show(event.fitted.report, self.session.last_metrics, preview=True)
        self._mark_context(event.fitted.report)
        self.query_one(MemoryPanel).show_session(self.session, event.fitted)

    # -- sending and generating -------------------------------------------------------------------
    @on(PromptInput.Submitted, "#prompt")
    async def send(self, event: PromptInput.Submitted) -> None:
        if self.generating:
            self.notify("A reply is still coming: Esc stops it.", severity="warning")
            return
        text = event.value.strip()
        event.input.value = ""
        if text:
            try:  # the prompt is fitted first: a refusal keeps the text here and writes nothing
                msg = self.session.send(text, check=True)
            except RPContextError as exc:
                event.input.value = text
                self.notify(str(exc), title="Not sent", severity="error")
                return
            await self.query_one("#log").mount(self._view_for(msg))
            self.query_one("#log", VerticalScroll).scroll_end(animate=False)
        speakers = self.session.next_speakers(user_typed=bool(text))
        if not speakers:
            self.notify("Nobody speaks on their own in this group: pick a speaker (ctrl+s).")
            self.refresh_preview()
            return
        self.start("reply", speakers)

    def start(self, kind: TurnKind, speakers: list[str | None]) -> None:
        """Run one or more turns in the generation worker."""
        if self.generating:
            return
        self.generating = True
        self._epoch += 1
        self.add_class("generating")
        self._status("processing the prompt…")
        self.generate(kind, speakers)

    def _hook_progress(self, callback: Any) -> None:
        """Hand the session (or a backend without one) a (processed, total) callback for the
        prompt-reading bar."""
        if hasattr(self.session, "on_progress"):
            self.session.on_progress = callback
        elif hasattr(self.session.backend, "progress_callback"):
            self.session.backend.progress_callback = callback

    @work(thread=True, exclusive=True, group="generation", exit_on_error=False)
    def generate(self, kind: TurnKind, speakers: list[str | None]) -> None:
        """Run the turns, posting what happens; touches no widget (the handlers below do)."""
        worker = get_current_worker()
        self._hook_progress(lambda done, total: self.post_message(ReadingProgress(done, total)))
        try:
            for speaker in speakers:
                if worker.is_cancelled:
                    break
                turn = self.session.reply(speaker, kind=kind)
                self._turn = turn  # for Esc: cancelling is thread-safe
                self.post_message(ReplyStarted(turn))
                self._stream_turn(turn, lambda: worker.is_cancelled)
                self.post_message(ReplyEnded(turn))
                if turn.metrics is not None and turn.metrics.stop_reason == "cancelled":
                    break
        except Exception as exc:  # noqa: BLE001 - a failed turn is a notice, never a crash
            self.post_message(ReplyFailed(exc, expected=isinstance(exc, RPContextError)))
        finally:
            self._turn = None
            self._hook_progress(None)
            self.post_message(RepliesDone())

    def _stream_turn(self, turn: Turn, cancelled: Any) -> None:
        """Post the turn's text as it streams, coalesced to one chunk per FLUSH_SECONDS (the first
        piece at once), and the reasoning progress of a thinking model."""
        buf: list[str] = []
        last = 0.0
        for piece, thought in _pieces(turn):
            buf.append(piece)
            if cancelled():
                turn.cancel()
            now = time.monotonic()
            if now - last < FLUSH_SECONDS:
                continue
            if thought:
                self.post_message(ReplyThinking(turn.speaker, thought))
            elif any(buf):
                self.post_message(ReplyChunk(turn, "".join(buf)))
                buf.clear()
            last = now
        if any(buf):
            self.post_message(ReplyChunk(turn, "".join(buf)))

    @on(ReadingProgress)
    def _reading(self, event: ReadingProgress) -> None:
        """The backend's progress while it reads the prompt."""
        if not self.generating:
            return
        done, total = event.done, event.total
        box = self.query_one("#reading")
        box.display = done < total
        self.query_one("#reading-label", Static).update(
            f"Reading the prompt: {done:,} of {total:,} tokens (Esc stops)")
        self.query_one("#reading-bar", ProgressBar).update(total=total, progress=done)

    @on(ReplyThinking)
    def _thinking(self, event: ReplyThinking) -> None:
        """A reasoning model is in its thinking block: say so (it folds under the reply later)."""
        self.query_one("#reading").display = False
        self._status(f"{event.speaker} is thinking… ({event.chars:,} characters so far)")

    @on(ReplyStarted)
    async def _begin(self, event: ReplyStarted) -> None:
        turn = event.turn
        self._turn = turn
        self._status(f"{turn.speaker} is writing…")
        n = len(turn.fitted.ids) if turn.fitted.ids else turn.fitted.report.tokens
        self.query_one("#reading-label", Static).update(
            f"Reading the prompt ({n:,} tokens; what the model read before is reused)…")
        self.query_one("#reading-bar", ProgressBar).update(total=None)
        self.query_one("#reading").display = True
        self._view = await self._reply_view(turn)

    async def _reply_view(self, turn: Turn) -> MessageView | None:
        """Where this turn's text goes: a new message, the last one, or (None) the message box."""
        if turn.kind == "impersonate":
            self.query_one(PromptInput).value = ""
            return None
        if turn.kind == "reply":
            view = MessageView(None, turn.speaker, "…", role="assistant")
            await self.query_one("#log").mount(view)
            self.query_one("#log", VerticalScroll).scroll_end(animate=False)
            return view
        view = self._views()[-1]
        if turn.kind == "swipe":
            n = len(self.session.chat.messages[-1].swipes or [None])
            await view.show("…", swipe=(n, n + 1))
        return view

    @on(ReplyChunk)
    async def _stream(self, event: ReplyChunk) -> None:
        self.query_one("#reading").display = False
        view = self._view
        if view is None:
            prompt = self.query_one(PromptInput)
            prompt.value += event.text
            return
        await view.append(event.text)
        log = self.query_one("#log", VerticalScroll)
        if log.max_scroll_y - log.scroll_y <= 3:
            log.scroll_end(animate=False)

    @on(ReplyEnded)
    async def _end(self, event: ReplyEnded) -> None:
        turn, view = event.turn, self._view
        self._view = None
        self.query_one("#reading").display = False
        stopped = turn.metrics is not None and turn.metrics.stop_reason == "cancelled"
        if turn.kind == "impersonate":
            self.query_one(PromptInput).value = turn.text
        elif turn.message is not None and view is not None:
            await self._show_reply(view, turn, stopped)
        elif view is not None and turn.kind == "reply":
            await view.remove()
            if stopped:
                self.notify("Stopped before the first word; nothing was added.", timeout=4)
                stopped = False
            else:
                self.notify(f"{turn.speaker} gave an empty reply.", severity="warning")
        elif view is not None:  # an empty swipe or continuation: show the message as it is
            m = self.session.chat.messages[-1]
            await view.show(self.session.display_text(m),
                            swipe=(m.swipe_id or 0, len(m.swipes)) if m.swipes else None)
        if stopped:
            self.notify("Stopped: what came so far is kept (marked “stopped”).", timeout=4)
        elif turn.metrics is not None and turn.metrics.stop_reason == "max_tokens":
            self.notify("The reply reached its length limit (F7: reply length); ctrl+t "
                        "continues it.", timeout=6)
        self.query_one(BudgetPanel).show(turn.fitted.report, turn.metrics)
        self._mark_context(turn.fitted.report)
        self.query_one(MemoryPanel).show_session(self.session)
        await self._show_picture()

    async def _show_reply(self, view: MessageView, turn: Turn, stopped: bool) -> None:
        """The finished message as the chat keeps it (marked when stopped; saved again then)."""
        m = turn.message
        assert m is not None
        if stopped or m.extra.get(STOPPED_KEY):
            if stopped:
                m.extra[STOPPED_KEY] = True
            else:
                m.extra.pop(STOPPED_KEY, None)  # continued to its end
            self.session.save()
        await view.show(self.session.display_text(m), speaker=m.name or turn.speaker,
                        swipe=(m.swipe_id or 0, len(m.swipes)) if m.swipes else None,
                        message_id=m.id, meta=self._meta(m), **_reasoning(m))

    @on(ReplyFailed)
    def _failed(self, event: ReplyFailed) -> None:
        """A turn that could not run: the library's reason as a notice; anything else logged too."""
        if event.expected:
            self.notify(str(event.error), title="Cannot reply", severity="error")
        else:
            report_error(self.app, event.error, "Generation")

    async def _show_picture(self) -> None:
        """The picture of who spoke last (in a group), else of the character."""
        s = self.session
        speaker = next((m.name for m in reversed(s.chat.messages)
                        if m.role == "assistant" and m.name in s.members), s.members[0])
        try:
            path = card_path_of(self.spec, s.members.index(speaker))
        except (RPContextError, ValueError):
            path = None
        key = str(path) if path is not None else None
        if path is not None and key is not None and key not in self._pictures:
            try:
                self._pictures[key] = load_card(path).image
            except RPContextError:
                self._pictures[key] = None
        data = self._pictures.get(key) if key is not None else None
        await self.query_one(CardPicture).show_picture(key, speaker, data)

    @on(RepliesDone)
    def _done(self) -> None:
        self.generating = False
        self._view = None
        self.remove_class("generating")
        self.query_one("#reading").display = False
        m = self.session.last_metrics
        if m is not None and m.tokens_per_second is not None:
            self._status(f"{m.generated_tokens} tokens at {m.tokens_per_second:.1f} tok/s")
        else:
            self._status("")
        if not isinstance(self.focused, MessageView):
            self.query_one(PromptInput).focus()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A worker that died unexpectedly (the generation worker reports its own errors)."""
        if event.state != WorkerState.ERROR or event.worker.error is None:
            return
        what = {"generation": "Generation", "preview": "Budget preview"}.get(event.worker.group,
                                                                             "A background job")
        report_error(self.app, event.worker.error, what)
        if event.worker.group == "generation":
            self._done()

    # -- actions -----------------------------------------------------------------------------------
    def action_stop(self) -> None:
        if self.generating:
            turn = self._turn
            if turn is not None:
                turn.cancel()
            self.workers.cancel_group(self, "generation")
            self._status("stopping…")
            if self.query_one("#reading").display:
                self.query_one("#reading-label", Static).update(
                    "Stopping: the model finishes the batch it is reading…")
        else:
            self.query_one(PromptInput).focus()

    def _last_reply(self) -> ChatMessage | None:
        msgs = self.session.chat.messages
        return msgs[-1] if msgs and msgs[-1].role == "assistant" else None

    def action_regenerate(self) -> None:
        """A new swipe of the last reply (the old ones stay, ←/→ to compare)."""
        if self._last_reply() is None:
            self.notify("Nothing to regenerate: the last message is not a reply.")
            return
        self.start("swipe", [None])

    def action_continue_reply(self) -> None:
        if self._last_reply() is None:
            self.notify("Nothing to continue: the last message is not a reply.")
            return
        self.start("continue", [None])

    def action_impersonate(self) -> None:
        self.start("impersonate", [None])

    def action_group_round(self) -> None:
        if not self.session.is_group:
            self.start("reply", [None])
            return
        speakers = self.session.next_speakers(user_typed=False)
        if not speakers:
            self.notify("Nobody is due to speak: pick a speaker (ctrl+s).")
            return
        self.start("reply", list(speakers))

    def action_pick_speaker(self) -> None:
        s = self.session
        muted = set(s.muted)
        options = [(m, f"{m} (muted)" if m in muted else m, None) for m in s.members]

        def chosen(name: str | None) -> None:
            if name:
                self.start("reply", [name])

        self.app.push_screen(PickScreen("Who speaks next?", options), chosen)

    def action_new_chat(self) -> None:
        greetings = self.session.greetings
        if len(greetings) <= 1 or self.session.is_group:
            self.post_message(self.NewChatRequested(0))
            return
        options = [(str(i), _first_line(g), None) for i, g in enumerate(greetings)]

        def chosen(idx: str | None) -> None:
            if idx is not None:
                self.post_message(self.NewChatRequested(int(idx)))

        self.app.push_screen(PickScreen("New chat: which greeting?", options,
                                        hint="The others stay as swipes of the first message."), chosen)

    def action_inspector(self) -> None:
        """The prompt of the last turn; before the first turn, the prompt the next one will send."""
        fitted = self.session.last_fitted
        preview = fitted is None
        shown = self.preview if preview else fitted
        if shown is None:
            self.notify("No prompt yet.")
            return
        self.app.push_screen(InspectorScreen(shown, self.session.last_metrics, preview=preview))

    def action_toggle_panel(self) -> None:
        side = self.query_one("#side")
        self._panel_choice = not side.display
        side.display = self._panel_choice

    def action_edit_card(self) -> None:
        if self.generating:
            self.notify("Wait for the reply to finish (Esc stops it).", severity="warning")
            return
        members = self.session.members

        def edit(name: str | None) -> None:
            if name is None:
                return
            index = members.index(name)

            def saved(spec: ChatSpec | None) -> None:
                if spec is not None:
                    self.post_message(self.ReopenRequested(spec))

            self.app.push_screen(CardEditorScreen(self.session, self.spec, index), saved)

        if len(members) == 1:
            edit(members[0])
        else:
            self.app.push_screen(PickScreen("Edit whose card?", [(m, m, None) for m in members]),
                                 edit)

    def action_author_note(self) -> None:
        def saved(done: bool | None) -> None:
            if done:
                self.refresh_preview()

        self.app.push_screen(AuthorNoteScreen(self.session), saved)

    def action_edit_memory(self) -> None:
        panel = self.query_one(MemoryPanel)
        if not panel.editable:
            self.notify("No memory to edit yet: it is written when old messages leave the context.")
            return

        def edited(text: str | None) -> None:
            if text is not None and text != panel.text and panel.save(self.session, text):
                self.notify("Memory saved.")
                self.refresh_preview()

        self.app.push_screen(EditScreen("Edit the memory (summary of evicted messages)",
                                        panel.text), edited)

    # -- message actions ------------------------------------------------------------------------------
    @on(PromptInput.Swipe)
    async def swipe_last(self, event: PromptInput.Swipe) -> None:
        last = self._last_reply()
        if last is not None:
            await self.swipe(last.id, event.step, may_generate=True)

    @on(PromptInput.ToMessages)
    def to_messages(self) -> None:
        views = self._views()
        if views:
            views[-1].focus()
            views[-1].scroll_visible(animate=False)

    async def swipe(self, message_id: str, step: int, *, may_generate: bool = False) -> None:
        if self.generating:
            return
        if self.session.chat.find(message_id) is None:
            self._vanished()
            return
        if self.session.swipe(message_id, step):
            m = self.session.chat.find(message_id)
            view = self._view_of(message_id)
            if view is not None and m is not None:
                await view.show(self.session.display_text(m),
                                swipe=(m.swipe_id or 0, len(m.swipes or [m.text])),
                                meta=self._meta(m))
            self.refresh_preview()
        elif step > 0 and may_generate:
            self.start("swipe", [None])

    def _vanished(self) -> None:
        self.notify("That message is no longer in the chat; nothing was changed.",
                    severity="warning")

    @on(MessageView.Action)
    async def message_action(self, event: MessageView.Action) -> None:
        if event.action == "leave":
            self.query_one(PromptInput).focus()
            return
        if event.action == "move":
            self._move_selection(event.control, event.step)
            return
        if self.generating:
            self.notify("Wait for the reply to finish (Esc stops it).", severity="warning")
            return
        mid = event.message_id
        m = self.session.chat.find(mid)
        if m is None:
            self._vanished()
            return
        if event.action == "swipe":
            last = self._last_reply()
            await self.swipe(mid, event.step, may_generate=last is not None and last.id == mid)
        elif event.action == "delete":
            self.ask_delete(mid)
        elif event.action == "branch":
            self.post_message(self.BranchRequested(mid))
        elif event.action == "edit":
            self.app.push_screen(EditScreen(f"Edit {m.name or m.role}'s message", m.text),
                                 lambda text: self._edited(mid, text))

    def _move_selection(self, view: Any, step: int) -> None:
        """↑/↓ between messages; ↓ past the newest goes back to typing."""
        views = self._views()
        i = views.index(view) + step if view in views else len(views)
        if i >= len(views):
            self.query_one(PromptInput).focus()
        elif i >= 0:
            views[i].focus()
            views[i].scroll_visible(animate=False)

    def ask_delete(self, message_id: str) -> None:
        m = self.session.chat.find(message_id)
        if m is None:
            self._vanished()
            return

        async def answered(yes: bool | None) -> None:
            if yes:
                await self.delete(message_id)

        self.app.push_screen(ConfirmScreen(f"Delete {m.name or m.role}'s message?",
                                           _first_line(m.text)), answered)

    async def delete(self, message_id: str) -> None:
        if self.session.chat.find(message_id) is None:
            self._vanished()
            return
        self.session.delete(message_id)
        view = self._view_of(message_id)
        if view is not None:
            await view.remove()
        self.query_one(PromptInput).focus()
        self.refresh_preview()

    async def _edited(self, message_id: str, text: str | None) -> None:
        m = self.session.chat.find(message_id)
        if m is None:
            self._vanished()
            return
        if text is None or text == m.text:
            return
        self.session.edit(message_id, text)
        view = self._view_of(message_id)
        if view is not None:
            await view.show(self.session.display_text(m), swipe=view.swipe, meta=self._meta(m))
        self.refresh_preview()

    @on(RosterList.ToggleMute)
    def toggle_mute(self, event: RosterList.ToggleMute) -> None:
        self.toggle_mute_named(event.member)

    def toggle_mute_named(self, member: str) -> None:
        """Mute or unmute a group member for this chat (saved in the chat file)."""
        muted = member in self.session.muted
        self.session.set_muted(member, not muted)
        self._update_roster()
        self.refresh_preview()
        self.notify(f"{member} {'can speak again' if muted else 'is muted'}.")


def _pieces(turn: Turn) -> Iterator[tuple[str, int]]:
    """(text, reasoning characters so far) as a turn streams; text is "" while it reasons.
    Turns without reasoning support stream text only."""
    deltas = getattr(turn, "deltas", None)
    if deltas is None:
        for piece in turn:
            yield piece, 0
        return
    thought = 0
    for delta in deltas():
        thought += len(delta.reasoning)
        yield delta.text, thought if delta.reasoning and not delta.text else 0


def _reasoning(m: ChatMessage) -> dict[str, Any]:
    """The reply's stored reasoning (kept apart from its text) for the collapsed block."""
    text = m.extra.get("reasoning")
    seconds = m.extra.get("reasoning_duration")
    if not isinstance(text, str) or not text.strip():
        return {}
    ok = isinstance(seconds, (int, float)) and not isinstance(seconds, bool)
    # SillyTavern's `reasoning_duration` is in milliseconds
    return {"reasoning": text.strip(), "reasoning_seconds": seconds / 1000 if ok else None}


def _first_line(text: str, width: int = 70) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"
