"""The chat browser: every chat of the open character or group, newest first, with its date,
message count and last line; open, rename or delete one. Branches name their parent."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label, Static

from rp_context.chatfolder import ChatInfo, delete_chat, list_chats, rename_chat
from rp_context.errors import RPContextError

from .modals import AskScreen, ConfirmScreen

__all__ = ["ChatBrowserScreen"]


class ChatBrowserScreen(ModalScreen[Path | None]):
    """Pick a chat to open (Enter); r renames, d deletes (asks first); Esc closes. ● marks the
    open chat, ← the chat a branch came from."""

    BINDINGS = [
        Binding("escape", "dismiss_none", "Close"),
        Binding("r", "rename", "Rename"),
        Binding("d,delete", "delete", "Delete"),
    ]

    class OpenChatRenamed(Message):
        """The open chat's file was renamed to `path`; whoever holds the session follows it."""

        def __init__(self, path: Path) -> None:
            super().__init__()
            self.path = path

    def __init__(self, cast: str, folder: Path, current: Path | None) -> None:
        super().__init__(classes="modal")
        self.cast = cast
        self.folder = folder
        self.current = current
        self.chats: list[ChatInfo] = []

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide", id="browser"):
            yield Label(f"Chats with {self.cast}", classes="dialog-title")
            yield DataTable(id="chats", cursor_type="row", zebra_stripes=True)
            yield Static("Enter opens · r renames · d deletes · Esc closes", classes="hint")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("Chat", "Last changed", "Msgs", "Last line")
        self.refresh_list()
        table.focus()

    def refresh_list(self, select: Path | None = None) -> None:
        """List the chats again, the cursor on `select` when given."""
        table = self.query_one(DataTable)
        table.clear()
        self.chats = list_chats(self.folder)
        width = min(100, self.app.size.width) - 16  # the dialog less borders and cell padding
        name_w = max(16, min(44, width // 3))
        date_fmt, date_w = ("%Y-%m-%d %H:%M", 16) if width > 80 else ("%m-%d %H:%M", 11)
        last_w = max(12, width - name_w - date_w - 6)
        for c in self.chats:
            name = ("● " if c.path == self.current else "") + c.name
            if c.parent:
                name += f" ← {c.parent}"
            last = f"{c.last_speaker}: {c.last_line}" if c.last_speaker else c.last_line
            table.add_row(_cut(name, name_w), f"{c.modified:{date_fmt}}", str(c.messages),
                          _cut(last, last_w), key=str(c.path))
        if not self.chats:
            self.query_one(".hint", Static).update("No saved chats yet. Esc closes.")
        paths = [c.path for c in self.chats]
        if select in paths:
            table.move_cursor(row=paths.index(select))

    def _selected(self) -> ChatInfo | None:
        table = self.query_one(DataTable)
        if not self.chats or table.cursor_row < 0 or table.cursor_row >= len(self.chats):
            return None
        return self.chats[table.cursor_row]

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        chat = self._selected()
        if chat is not None:
            self.dismiss(chat.path)

    def action_rename(self) -> None:
        chat = self._selected()
        if chat is None:
            return

        def named(new: str | None) -> None:
            if not new or chat is None:
                return
            try:
                target = rename_chat(chat.path, new)
            except RPContextError as exc:
                self.notify(str(exc), title="Not renamed", severity="error")
                return
            if chat.path == self.current:
                self.current = target
                self._follow_rename(target)
            self.refresh_list(select=target)

        self.app.push_screen(AskScreen("New name for this chat", chat.name), named)

    def _follow_rename(self, target: Path) -> None:
        self.post_message(self.OpenChatRenamed(target))

    def action_delete(self) -> None:
        chat = self._selected()
        if chat is None:
            return
        if chat.path == self.current:
            self.notify("This chat is open: open another one (or start a new one) first.",
                        severity="warning")
            return

        def answered(yes: bool | None) -> None:
            if not yes or chat is None:
                return
            try:
                delete_chat(chat.path)
            except RPContextError as exc:
                self.notify(str(exc), title="Not deleted", severity="error")
                return
            self.refresh_list()

        self.app.push_screen(ConfirmScreen(f"Delete the chat “{chat.name}”?",
                                           f"{chat.messages} messages; this removes the file."),
                             answered)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
