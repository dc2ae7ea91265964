"""rp-chat: the Textual app. It holds the open ChatSession and switches chats, presets, personas
and models; the chat screen does the talking."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from textual import work
from textual.app import App
from textual.binding import Binding

from rp_context.errors import RPContextError
from rp_context.session import ChatSession

from .commands import ChatCommands
from .config import Settings, new_chat_path, save_settings
from .library import ImportResult, list_cast, list_personas, list_preset_names
from .screens import ChatScreen, ImportScreen, PickScreen, SettingsScreen
from .sessions import ChatSpec, cast_name, open_session

__all__ = ["RPChatApp"]


class RPChatApp(App[None]):
    """Roleplay chat with one character or a group, on a local model through rp_context."""

    TITLE = "rp-chat"
    CSS_PATH = ["app.tcss"]
    COMMANDS = App.COMMANDS | {ChatCommands}
    BINDINGS = [Binding("ctrl+q", "quit", "Quit", priority=True)]

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
    ) -> None:
        """Give an open `session`, or a `spec` to open (with `backend`/`counter` to reuse)."""
        super().__init__()
        self.spec = spec or ChatSpec()
        self.settings = settings or Settings()
        self.save_settings_file = save_settings_file
        self.cursor_blink = cursor_blink
        if session is None:
            session = open_session(self.spec, self.settings, backend=backend, counter=counter)
        self.session = session

    def on_mount(self) -> None:
        self.push_screen(ChatScreen())

    @property
    def chat_screen(self) -> ChatScreen:
        return next(s for s in self.screen_stack if isinstance(s, ChatScreen))

    # -- switching what is open -------------------------------------------------------------------
    def reopen(self, spec: ChatSpec, *, fresh: bool = False, new_backend: bool = False) -> None:
        """Open another chat (or the same with another preset/persona/model) without blocking."""
        if self.chat_screen.generating:
            self.notify("Wait for the reply to finish (Esc stops it).", severity="warning")
            return
        self._reopen(spec, fresh, new_backend)

    @work(thread=True, exclusive=True, group="open", exit_on_error=False)
    def _reopen(self, spec: ChatSpec, fresh: bool, new_backend: bool) -> None:
        old = self.session
        backend = None if new_backend else old.backend
        counter = None if new_backend else old.counter
        self.call_from_thread(self.notify, "Opening…", timeout=2)
        try:
            session = open_session(spec, self.settings, backend=backend, counter=counter, fresh=fresh)
        except RPContextError as exc:
            self.call_from_thread(self.notify, str(exc), title="Cannot open", severity="error", timeout=10)
            return
        if new_backend and old.backend is not None and hasattr(old.backend, "close"):
            old.backend.close()
        self.call_from_thread(self._install, spec, session)

    async def _install(self, spec: ChatSpec, session: ChatSession) -> None:
        self.spec = replace(spec, chat=session.chat_path)
        self.session = session
        await self.chat_screen.reload()

    def new_chat(self, greeting: int = 0) -> None:
        """A new chat file for the same cast, opening with greeting number `greeting`."""
        if self.chat_screen.generating:
            return
        try:
            path = new_chat_path(cast_name(self.spec.with_cards()))
            self.session.new_chat(greeting, chat_path=path)
        except RPContextError as exc:
            self.notify(str(exc), severity="error")
            return
        self.spec = replace(self.spec, chat=path)
        self.call_later(self.chat_screen.reload)

    # -- pickers ---------------------------------------------------------------------------------------
    def action_pick_cast(self) -> None:
        entries = list_cast()
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
                                    hint="Your latest chat with them opens; ctrl+n starts a new one."),
                         chosen)

    def action_pick_preset(self) -> None:
        options = [(name, f"{name}  ({desc})", None) for name, desc in list_preset_names()]

        def chosen(name: str | None) -> None:
            if name:
                self.settings = self.settings.model_copy(update={"preset": name})
                self._save_settings()
                self.reopen(replace(self.spec, preset=name, chat=self.session.chat_path))

        self.push_screen(PickScreen("Preset bundle or instruct family", options), chosen)

    def action_pick_persona(self) -> None:
        options = [("", "No persona (plain User)", None)]
        options += [(str(e.path), f"{e.name}  [{e.origin}]", e.problem) for e in list_personas()]

        def chosen(path: str | None) -> None:
            if path is None:
                return
            persona = path or None
            self.settings = self.settings.model_copy(update={"persona": persona})
            self._save_settings()
            self.reopen(replace(self.spec, persona=persona, chat=self.session.chat_path))

        self.push_screen(PickScreen("Who are you in this story?", options), chosen)

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

    def action_settings(self) -> None:
        def saved(new: Settings | None) -> None:
            if new is None or new == self.settings:
                return
            model_changed = (new.model, new.context, new.n_gpu_layers) != (
                self.settings.model, self.settings.context, self.settings.n_gpu_layers)
            self.settings = new
            self._save_settings()
            if model_changed:
                self.reopen(replace(self.spec, chat=self.session.chat_path), new_backend=True)

        self.push_screen(SettingsScreen(self.settings), saved)

    def _save_settings(self) -> None:
        if not self.save_settings_file:
            return
        try:
            save_settings(self.settings)
        except OSError as exc:
            self.notify(f"Settings not saved: {exc}", severity="error")
