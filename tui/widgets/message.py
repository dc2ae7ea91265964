"""A chat message on screen (speaker, swipe position, time, tokens, a reasoning block that opens
on demand) and the message box. Roleplay text is drawn the way roleplayers write it: "dialogue"
in its own colour, *actions* in italics, **emphasis** in bold."""

from __future__ import annotations

import re
from typing import Any

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Collapsible, Static, TextArea

__all__ = ["MessageView", "PromptInput", "rp_text", "DIALOGUE_STYLE", "ACTION_STYLE"]

DIALOGUE_STYLE = "#e5c07b"
ACTION_STYLE = "italic #9aa7b4"
_SPANS = re.compile(r'\*\*[^*\n]+\*\*|\*[^*\n]+\*|_[^_\n]+_|"[^"\n]*"|“[^”\n]*”|«[^»\n]*»')


def rp_text(text: str) -> Text:
    """Roleplay markup as rich Text: quotes coloured, *actions* italic, **bold** bold. Markers
    stay visible (nothing the model wrote is hidden); an unclosed span shows as plain text."""
    out = Text()
    pos = 0
    for m in _SPANS.finditer(text):
        out.append(text[pos:m.start()])
        span = m.group()
        if span.startswith("**"):
            out.append(span, style="bold")
        elif span[0] in "*_":
            out.append(span, style=ACTION_STYLE)
        else:
            out.append(span, style=DIALOGUE_STYLE)
        pos = m.end()
    out.append(text[pos:])
    return out


class MessageView(Vertical, can_focus=True):
    """One message. Select it (↑ from an empty message box, or a click) to edit (e), delete (d),
    branch from it (b) or swipe it (←/→); Esc goes back to typing."""

    BINDINGS = [
        Binding("e", "edit", "Edit"),
        Binding("d,delete", "delete", "Delete"),
        Binding("b", "branch", "Branch"),
        Binding("left", "swipe(-1)", "Swipe ←", show=False),
        Binding("right", "swipe(1)", "Swipe →", show=False),
        Binding("up", "move(-1)", "Previous", show=False),
        Binding("down", "move(1)", "Next", show=False),
        Binding("escape", "leave", "Back to typing"),
    ]

    class Action(Message):
        """The user asked for `action` (edit, delete, branch, swipe, leave) on `message_id`."""

        def __init__(self, message_id: str, action: str, step: int = 0,
                     view: MessageView | None = None) -> None:
            super().__init__()
            self.message_id = message_id
            self.action = action
            self.step = step
            self.view = view

        @property
        def control(self) -> MessageView | None:
            return self.view

    def __init__(self, message_id: str | None, speaker: str, text: str, *, role: str,
                 swipe: tuple[int, int] | None = None, meta: str = "",
                 reasoning: str | None = None, reasoning_seconds: float | None = None) -> None:
        super().__init__(classes=f"message {role}")
        self.message_id = message_id
        self.speaker = speaker
        self.text = text
        self.role = role
        self.swipe = swipe
        self.meta = meta
        self.reasoning = reasoning
        self.reasoning_seconds = reasoning_seconds

    def _header(self) -> Text:
        head = Text(self.speaker, style="bold")
        if self.swipe is not None and self.swipe[1] > 1:
            head.append(f"  ‹ {self.swipe[0] + 1}/{self.swipe[1]} ›")
        if self.meta:
            head.append(f"  {self.meta}", style="not bold dim")
        return head

    def _reasoning_title(self) -> str:
        if self.reasoning_seconds:
            return f"Reasoning ({self.reasoning_seconds:.1f} s)"
        return "Reasoning"

    def compose(self) -> ComposeResult:
        yield Static(self._header(), classes="speaker")
        if self.reasoning:
            with Collapsible(title=self._reasoning_title(), collapsed=True, classes="reasoning"):
                yield Static(self.reasoning, markup=False)
        yield Static(rp_text(self.text), classes="body")

    async def show(self, text: str, *, speaker: str | None = None,
                   swipe: tuple[int, int] | None = None, message_id: str | None = None,
                   meta: str | None = None, reasoning: str | None = None,
                   reasoning_seconds: float | None = None) -> None:
        """Replace what the message shows (after a swipe, an edit or a finished reply)."""
        if speaker is not None:
            self.speaker = speaker
        if message_id is not None:
            self.message_id = message_id
        if meta is not None:
            self.meta = meta
        self.swipe = swipe
        self.text = text
        self.query_one(".speaker", Static).update(self._header())
        self.query_one(".body", Static).update(rp_text(text))
        if reasoning and reasoning != self.reasoning:
            self.reasoning, self.reasoning_seconds = reasoning, reasoning_seconds
            for old in self.query(".reasoning"):
                await old.remove()
            block = Collapsible(Static(reasoning, markup=False), title=self._reasoning_title(),
                                collapsed=True, classes="reasoning")
            await self.mount(block, before=self.query_one(".body"))

    async def append(self, piece: str) -> None:
        """Add streamed text."""
        if self.text == "…":
            self.text = ""
        self.text += piece
        self.query_one(".body", Static).update(rp_text(self.text))

    async def end_stream(self) -> None:
        """Kept for callers of the streaming API; the text is already on screen."""

    def set_meta(self, meta: str) -> None:
        self.meta = meta
        self.query_one(".speaker", Static).update(self._header())

    def _post(self, action: str, step: int = 0) -> None:
        if self.message_id is not None:
            self.post_message(self.Action(self.message_id, action, step))

    def action_edit(self) -> None:
        self._post("edit")

    def action_delete(self) -> None:
        self._post("delete")

    def action_branch(self) -> None:
        self._post("branch")

    def action_swipe(self, step: int) -> None:
        self._post("swipe", step)

    def action_move(self, step: int) -> None:
        self.post_message(self.Action(self.message_id or "", "move", step, view=self))

    def action_leave(self) -> None:
        self.post_message(self.Action(self.message_id or "", "leave"))


class PromptInput(TextArea, inherit_bindings=False):
    """The message box: several lines. Enter sends; shift+Enter (if chosen in settings) or ctrl+j
    starts a new line. With nothing typed, ←/→ swipe the last reply and ↑ selects the messages,
    as in SillyTavern."""

    BINDINGS = [b for b in TextArea.BINDINGS
                if not isinstance(b, Binding) or b.key not in ("f6", "f7", "ctrl+y,super+y")]
    """TextArea's keys less those the app uses (F6 import, F7 settings, ctrl+y impersonate)."""

    DEFAULT_CSS = "PromptInput { height: auto; min-height: 3; max-height: 10; }"

    class Submitted(Message):
        """Enter was pressed: `value` is what was typed."""

        def __init__(self, prompt: PromptInput, value: str) -> None:
            super().__init__()
            self.input = prompt
            self.value = value

        @property
        def control(self) -> PromptInput:
            return self.input

    class Swipe(Message):
        def __init__(self, step: int) -> None:
            super().__init__()
            self.step = step

    class ToMessages(Message):
        pass

    def __init__(self, *, placeholder: str = "", newline_key: str = "shift+enter", **kw: Any) -> None:
        super().__init__(soft_wrap=True, show_line_numbers=False, tab_behavior="focus", **kw)
        self.placeholder = placeholder
        self.newline_keys = {"ctrl+j", newline_key}

    @property
    def value(self) -> str:
        return self.text

    @value.setter
    def value(self, text: str) -> None:
        self.load_text(text)
        self.move_cursor(self.document.end)

    @property
    def cursor_position(self) -> int:
        return len(self.text)

    @cursor_position.setter
    def cursor_position(self, _: int) -> None:
        self.move_cursor(self.document.end)

    async def _on_key(self, event: events.Key) -> None:
        key = event.key
        if key in self.newline_keys:
            event.stop()
            event.prevent_default()
            self.insert("\n")
            return
        if key == "enter":
            event.stop()
            event.prevent_default()
            self.post_message(self.Submitted(self, self.text))
            return
        if not self.text and key in ("left", "right", "up"):
            event.stop()
            event.prevent_default()
            if key == "up":
                self.post_message(self.ToMessages())
            else:
                self.post_message(self.Swipe(-1 if key == "left" else 1))
            return
        # anything else: TextArea's own handler runs next (Textual dispatches along the MRO)
