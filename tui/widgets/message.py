"""A chat message on screen (speaker, swipe position, markdown that can stream in) and the prompt box."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, Markdown, Static
from textual.widgets._markdown import MarkdownStream

__all__ = ["MessageView", "PromptInput"]


class MessageView(Vertical, can_focus=True):
    """One message. Focus it to edit (e), delete (d) or swipe it (left/right)."""

    BINDINGS = [
        Binding("e", "edit", "Edit"),
        Binding("d,delete", "delete", "Delete"),
        Binding("left", "swipe(-1)", "Swipe ←", show=False),
        Binding("right", "swipe(1)", "Swipe →", show=False),
        Binding("escape", "leave", "Back to typing", show=False),
    ]

    class Action(Message):
        """The user asked for `action` (edit, delete, swipe) on message `message_id`."""

        def __init__(self, message_id: str, action: str, step: int = 0) -> None:
            super().__init__()
            self.message_id = message_id
            self.action = action
            self.step = step

    def __init__(self, message_id: str | None, speaker: str, text: str, *, role: str,
                 swipe: tuple[int, int] | None = None) -> None:
        super().__init__(classes=f"message {role}")
        self.message_id = message_id
        self.speaker = speaker
        self.text = text
        self.role = role
        self.swipe = swipe
        self._stream: MarkdownStream | None = None

    def _header(self) -> str:
        if self.swipe is not None and self.swipe[1] > 1:
            return f"{self.speaker}  ‹ {self.swipe[0] + 1}/{self.swipe[1]} ›"
        return self.speaker

    def compose(self) -> ComposeResult:
        yield Static(self._header(), classes="speaker", markup=False)
        yield Markdown(self.text, classes="body")

    async def show(self, text: str, *, speaker: str | None = None,
                   swipe: tuple[int, int] | None = None, message_id: str | None = None) -> None:
        """Replace what the message shows (after a swipe, an edit or a finished reply)."""
        if speaker is not None:
            self.speaker = speaker
        if message_id is not None:
            self.message_id = message_id
        self.swipe = swipe
        self.text = text
        self.query_one(".speaker", Static).update(self._header())
        await self.query_one(Markdown).update(text)

    async def append(self, piece: str) -> None:
        """Add streamed text; the markdown renders incrementally (Markdown.get_stream)."""
        if self._stream is None:
            md = self.query_one(Markdown)
            if self.text == "…":
                self.text = ""
                await md.update("")
            self._stream = Markdown.get_stream(md)
        self.text += piece
        await self._stream.write(piece)

    async def end_stream(self) -> None:
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None

    def action_edit(self) -> None:
        if self.message_id is not None:
            self.post_message(self.Action(self.message_id, "edit"))

    def action_delete(self) -> None:
        if self.message_id is not None:
            self.post_message(self.Action(self.message_id, "delete"))

    def action_swipe(self, step: int) -> None:
        if self.message_id is not None:
            self.post_message(self.Action(self.message_id, "swipe", step))

    def action_leave(self) -> None:
        self.post_message(self.Action(self.message_id or "", "leave"))


class PromptInput(Input):
    """The line you type in. With nothing typed, left/right swipe the last reply and up goes to
    the messages, as in SillyTavern."""

    BINDINGS = [
        Binding("left", "swipe_or_left(-1)", "Swipe ←", show=False),
        Binding("right", "swipe_or_right(1)", "Swipe →", show=False),
        Binding("up", "to_messages", "Messages", show=False),
    ]

    class Swipe(Message):
        def __init__(self, step: int) -> None:
            super().__init__()
            self.step = step

    class ToMessages(Message):
        pass

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)

    def action_swipe_or_left(self, step: int) -> None:
        if self.value:
            self.action_cursor_left()
        else:
            self.post_message(self.Swipe(step))

    def action_swipe_or_right(self, step: int) -> None:
        if self.value:
            self.action_cursor_right()
        else:
            self.post_message(self.Swipe(step))

    def action_to_messages(self) -> None:
        if not self.value:
            self.post_message(self.ToMessages())
