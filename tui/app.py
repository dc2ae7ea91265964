"""rp-chat: the Textual app. It holds the open ChatSession and switches chats, presets, personas
and models; the chat screen does the talking.

Screens get what they show through their constructors (the chat screen: the session, its spec and
the settings) and ask the app for what only the app does (open, branch, start a chat) by posting
messages. Opening a chat, listing the cast and importing run in thread workers that post typed
messages (`tui.messages`); a failure there is a notice, never a crash.

Nothing is lost by accident: every chat change is saved by the library as it happens, settings
are saved only once they were applied, and an unexpected error is logged to the data folder,
shown, and ends the app with a non-zero exit code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import App
from textual.binding import Binding
from textual.worker import get_current_worker

from rp_context.chat import save_chat
from rp_context.chatfolder import branch_chat
from rp_context.errors import RPContextError
from rp_context.session import ChatSession

from .commands import ChatCommands
from .config import (
    Settings,
    backup_settings,
    chat_folder,
    load_state,
    new_chat_path,
    save_settings,
    save_state,
)
from .crashlog import log_error, report_error
from .library import ImportResult, list_cast, list_personas, list_preset_names
from .messages import CastListed, LoadFailed, SessionOpened
from .screens import (
    ChatBrowserScreen,
    ChatScreen,
    HelpScreen,
    ImportScreen,
    PickScreen,
    SettingsScreen,
)
from .sessions import ChatSpec, apply_settings, cast_name, open_session

__all__ = ["RPChatApp"]


class RPChatApp(App[None]):
    """Roleplay chat with one character or a group, on a local model through rp_context."""

    TITLE = "rp-chat"
    CSS_PATH = ["app.tcss"]
    COMMANDS = App.COMMANDS | {ChatCommands}
    BINDINGS = [Binding("ctrl+q", "quit", "Quit", priority=True, show=False)]

    def __init__(
        self,
        session: ChatSession | None = None,
        *,
        spec: ChatSpec | None = None,
        settings: Settings | None = None,
        backend: Any = None,
        counter: Any = None,
        save_settings_file: bool = True,
        cursor_blink: bool = True,
        problems: list[str] | None = None,
        first_run_help: bool = False,
    ) -> None:
        """Give an open `session`, or a `spec` to open (with `backend`/`counter` to reuse).
        `problems`: what was wrong at start-up (a broken settings file, a bad model path); the
        app opens the settings with them so the user can fix it."""
        super().__init__()
        self.spec = spec or ChatSpec()
        self.settings = settings or Settings()
        self.save_settings_file = save_settings_file
        self.cursor_blink = cursor_blink
        self.problems = list(problems or [])
        self.first_run_help = first_run_help
        self.crash_log: Path | None = None
        if session is None:
            session = open_session(self.spec, self.settings, backend=backend, counter=counter)
        self.session = session

    def on_mount(self) -> None:
        if self.settings.keys:
            self.set_keymap(self.settings.keys)
        self.push_screen(ChatScreen(self.session, self.spec, self.settings,
                                    cursor_blink=self.cursor_blink))
        self._remember()
        if self.problems:
            problem = "; ".join(self.problems)
            self.notify(problem, title="Started with default settings", severity="error", timeout=15)
            self.action_settings(problem=problem)
        elif self.first_run_help:
            self.push_screen(HelpScreen(first_run=True))

    # -- nothing lost ---------------------------------------------------------------------------
    def _handle_exception(self, error: Exception) -> None:
        """Log an unexpected error to the data folder before Textual shows it and exits (code 1)."""
        self.crash_log = log_error(error, "unexpected error in rp-chat")
        super()._handle_exception(error)

    @on(LoadFailed)
    def _load_failed(self, event: LoadFailed) -> None:
        """Opening or listing failed: the library's reason as a notice, anything else logged too."""
        self.chat_screen.busy(None)
        if event.expected:
            self.notify(str(event.error), title=f"Cannot {event.what.lower()}", severity="error",
                        timeout=10)
        else:
            report_error(self, event.error, event.what)

    def _remember(self) -> None:
        """Save where the user is, so the next start opens here."""
        state = load_state()
        s = self.spec
        state = state.model_copy(update={
            "cards": list(s.cards), "roster": s.roster,
            "chat": str(self.session.chat_path) if self.session.chat_path else None,
            "preset": s.preset, "persona": s.persona})
        if self.first_run_help:
            state.seen_help = True
        try:
            save_state(state)
        except OSError as exc:
            self.notify(f"Could not remember this chat for next time: {exc}", severity="warning")

    @property
    def chat_screen(self) -> ChatScreen:
        return next(s for s in self.screen_stack if isinstance(s, ChatScreen))

    # -- switching what is open -------------------------------------------------------------------
    def reopen(self, spec: ChatSpec, *, fresh: bool = False, new_backend: bool = False,
               settings: Settings | None = None, on_ok: Callable[[], None] | None = None) -> None:
        """Open another chat (or the same with another preset/persona/model) without blocking;
        `on_ok` runs only once it opened (e.g. saving the settings that made it)."""
        if self.chat_screen.generating:
            self.notify("Wait for the reply to finish (Esc stops it).", severity="warning")
            return
        self.chat_screen.busy("Opening the chat…")
        self._reopen(spec, fresh, new_backend, settings or self.settings, on_ok)

    @work(thread=True, exclusive=True, group="open", exit_on_error=False)
    def _reopen(self, spec: ChatSpec, fresh: bool, new_backend: bool, settings: Settings,
                on_ok: Callable[[], None] | None) -> None:
        """Open the chat off the UI thread (a model may load); post it, or why it failed."""
        old = self.session
        backend = None if new_backend else old.backend
        counter = None if new_backend else old.counter
        try:
            session = open_session(spec, settings, backend=backend, counter=counter, fresh=fresh)
        except Exception as exc:  # noqa: BLE001 - a failed open must never end the chat
            self.post_message(LoadFailed("Open", exc, isinstance(exc, RPContextError)))
            return
        if get_current_worker().is_cancelled:  # a later open replaced this one
            if new_backend:
                _close(session.backend)
            return
        if new_backend:
            _close(old.backend)
        self.post_message(SessionOpened(spec, session, settings, on_ok))

    @on(SessionOpened)
    async def _install(self, event: SessionOpened) -> None:
        """Make the opened chat the app's and show it."""
        session = event.session
        self.spec = replace(event.spec, chat=session.chat_path)
        self.session = session
        self.settings = event.settings
        if event.on_ok is not None:
            event.on_ok()
        self._remember()
        self.chat_screen.busy(None)
        await self.chat_screen.reload(session, self.spec, self.settings)

    def new_chat(self, greeting: int = 0) -> None:
        """A new chat file for the same cast, opening with greeting number `greeting`."""
        if self.chat_screen.generating:
            return
        try:
            path = new_chat_path(cast_name(self.spec.with_cards()))
            self.session.new_chat(greeting, chat_path=path)
            apply_settings(self.session, self.settings)
        except RPContextError as exc:
            self.notify(str(exc), severity="error")
            return
        self.spec = replace(self.spec, chat=path)
        self._remember()
        self.call_later(self.chat_screen.reload, self.session, self.spec)

    def open_chat_file(self, path: Path) -> None:
        """Reopen this cast on another of its chat files."""
        self.reopen(replace(self.spec, chat=path))

    def branch_from(self, message_id: str) -> None:
        """A new chat with the messages up to `message_id`, naming this chat as its parent; it opens."""
        s = self.session
        if s.chat.find(message_id) is None:
            self.notify("That message is gone; nothing to branch from.", severity="warning")
            return
        parent = s.chat_path.stem if s.chat_path else ""
        name = cast_name(self.spec.with_cards())
        n = [m.id for m in s.chat.messages].index(message_id)
        try:
            chat = branch_chat(s.chat, message_id, parent)
            path = new_chat_path(name, stem=f"Branch #{n}")
            save_chat(chat, path)
        except RPContextError as exc:
            self.notify(str(exc), title="No branch made", severity="error")
            return
        self.notify(f"Branched into {path.name}; {parent} is unchanged.", title="Branch")
        self.open_chat_file(path)

    @on(ChatScreen.NewChatRequested)
    def _new_chat_requested(self, event: ChatScreen.NewChatRequested) -> None:
        self.new_chat(event.greeting)

    @on(ChatScreen.BranchRequested)
    def _branch_requested(self, event: ChatScreen.BranchRequested) -> None:
        self.branch_from(event.message_id)

    @on(ChatScreen.ReopenRequested)
    def _reopen_requested(self, event: ChatScreen.ReopenRequested) -> None:
        self.reopen(event.spec)

    @on(ChatBrowserScreen.OpenChatRenamed)
    def _follow_rename(self, event: ChatBrowserScreen.OpenChatRenamed) -> None:
        """The open chat's file has a new name: the session saves there and the next start opens it."""
        self.session.chat_path = event.path
        self.spec = replace(self.spec, chat=event.path)
        self.chat_screen.spec = self.spec
        self._remember()

    # -- pickers ---------------------------------------------------------------------------------------
    def action_pick_cast(self) -> None:
        """List the cards and groups off the UI thread (every file is read); the picker follows."""
        self.chat_screen.busy("Listing cards and groups…")
        self._list_cast()

    @work(thread=True, exclusive=True, group="list", exit_on_error=False)
    def _list_cast(self) -> None:
        try:
            self.post_message(CastListed(list_cast()))
        except Exception as exc:  # noqa: BLE001 - a listing that fails is a notice
            self.post_message(LoadFailed("List the cards", exc, isinstance(exc, RPContextError)))

    @on(CastListed)
    def _pick_cast(self, event: CastListed) -> None:
        self.chat_screen.busy(None)
        entries = event.entries
        options = [(str(e.path), f"{'Group: ' if e.kind == 'roster' else ''}{e.name}  [{e.origin}]",
                    e.problem) for e in entries]
        kinds = {str(e.path): e.kind for e in entries}

        def chosen(path: str | None) -> None:
            if not path:
                return
            if kinds[path] == "roster":
                spec = replace(self.spec, cards=(), roster=path, chat=None)
            else:
                spec = replace(self.spec, cards=(path,), roster=None, chat=None)
            self.reopen(spec)

        self.push_screen(PickScreen("Open a character or group", options,
                                    hint="Their latest chat opens; ctrl+o lists their chats, "
                                         "ctrl+n starts a new one."),
                         chosen)

    def action_browse_chats(self) -> None:
        name = cast_name(self.spec.with_cards())

        def chosen(path: Path | None) -> None:
            if path is not None and path != self.session.chat_path:
                self.open_chat_file(path)

        self.push_screen(ChatBrowserScreen(name, chat_folder(name), self.session.chat_path), chosen)

    def action_pick_preset(self) -> None:
        options = [(name, f"{name}  ({desc})", None) for name, desc in list_preset_names()]

        def chosen(name: str | None) -> None:
            if name:
                new = self.settings.model_copy(update={"preset": name})
                self.reopen(replace(self.spec, preset=name, chat=self.session.chat_path),
                            settings=new, on_ok=self._save_settings)

        self.push_screen(PickScreen("Preset bundle or instruct family", options), chosen)

    def action_pick_persona(self) -> None:
        options = [("", "No persona (plain User)", None), ("+new", "+ Create a persona…", None)]
        options += [(str(e.path), f"{e.name}  [{e.origin}]", e.problem) for e in list_personas()]

        def chosen(path: str | None) -> None:
            if path is None:
                return
            if path == "+new":
                self.edit_persona(None)
                return
            self.use_persona(path or None)

        self.push_screen(PickScreen("Who are you in this story?", options,
                                    hint="Edit the one in use from the palette: "
                                         "“Edit my persona”."), chosen)

    def use_persona(self, persona: str | None) -> None:
        new = self.settings.model_copy(update={"persona": persona})
        self.reopen(replace(self.spec, persona=persona, chat=self.session.chat_path),
                    settings=new, on_ok=self._save_settings)

    def edit_persona(self, path: str | None) -> None:
        from .screens.editors import PersonaScreen

        def saved(result: Path | None) -> None:
            if result is not None:
                self.use_persona(str(result))

        self.push_screen(PersonaScreen(Path(path) if path else None), saved)

    def action_edit_persona(self) -> None:
        self.edit_persona(self.spec.persona or self.settings.persona)

    def action_import_file(self) -> None:
        def imported(result: ImportResult | None) -> None:
            if result is None:
                return
            where = Path(result.path).parent
            self.notify(f"Imported {result.kind} {result.name!r} into {where}", title="Import")
            for w in result.warnings[:3]:
                self.notify(w, title="Repaired on load", severity="warning")
            if result.kind == "card":
                self.reopen(replace(self.spec, cards=(str(result.path),), roster=None, chat=None))

        self.push_screen(ImportScreen(), imported)

    def action_settings(self, problem: str = "") -> None:
        def chosen(new: Settings | None) -> None:
            if new is None or (new == self.settings and not problem):
                return
            self.apply_new_settings(new, fixing=bool(problem))

        self.push_screen(SettingsScreen(self.settings, problem=problem), chosen)

    def apply_new_settings(self, new: Settings, *, fixing: bool = False) -> None:
        """Apply `new`; save it only once it works (a model that fails to load is not kept)."""
        model_changed = (new.model, new.context, new.n_gpu_layers) != (
            self.settings.model, self.settings.context, self.settings.n_gpu_layers)

        def ok() -> None:
            if fixing and self.save_settings_file:
                backup_settings()
            self._save_settings()
            self.problems = []

        if model_changed:
            self.reopen(replace(self.spec, chat=self.session.chat_path), new_backend=True,
                        settings=new, on_ok=ok)
            return
        try:
            apply_settings(self.session, new)
        except RPContextError as exc:
            self.notify(str(exc), title="Settings not applied", severity="error")
            return
        self.settings = new
        if new.keys:
            self.set_keymap(new.keys)
        ok()
        self.chat_screen.apply_settings(new)
        self.notify("Settings applied and saved.")

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def _save_settings(self) -> None:
        if not self.save_settings_file:
            return
        try:
            save_settings(self.settings)
        except OSError as exc:
            self.notify(f"Settings not saved: {exc}", severity="error")


def _close(backend: Any) -> None:
    """Free a backend's model (a backend without `close` holds nothing to free)."""
    if backend is not None and hasattr(backend, "close"):
        backend.close()
