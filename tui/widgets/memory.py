"""The chat's memory in the side panel: the summary of messages that left the context, as the
library stores it. Empty until the first summary is written; editable from the palette."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

__all__ = ["MemoryPanel", "current_memory"]

EMPTY = "No memory yet: when old messages leave the context, a summary of them shows here."


def current_memory(session: Any) -> tuple[str, str | None]:
    """(summary text, id of the message holding it) of the newest stored summary; ("", None)."""
    memory = getattr(session, "memory", None)
    if isinstance(memory, dict):  # the session's view: {text, message_id, covers, shown}
        return str(memory.get("text") or ""), memory.get("message_id")
    if isinstance(memory, str):
        return memory, None
    try:
        from rp_context.memory import stored_memories
    except ImportError:
        return "", None
    memories = stored_memories(session.chat.messages)
    return (memories[-1].text, memories[-1].message_id) if memories else ("", None)


class MemoryPanel(Vertical):
    """Title and the summary (shortened); `save` writes an edited summary back."""

    DEFAULT_CSS = """
    MemoryPanel { height: auto; margin-top: 1; }
    MemoryPanel .title { text-style: bold; }
    MemoryPanel #memory-text { height: auto; max-height: 8; color: $text-muted; }
    """

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.text = ""
        self.holder: str | None = None
        self.can_write = False

    def compose(self) -> ComposeResult:
        yield Static("Memory", classes="title")
        yield Static(EMPTY, id="memory-text", markup=False)

    @property
    def editable(self) -> bool:
        return bool(self.text) or self.can_write

    def show_session(self, session: Any, fitted: Any = None) -> None:
        """The session's memory, and whether it is in `fitted` (default: the last prompt sent)."""
        self.text, self.holder = current_memory(session)
        self.can_write = callable(getattr(session, "set_memory", None))
        memory_in = getattr(session, "memory_in", None)
        memory = memory_in(fitted) if fitted is not None and callable(memory_in) else getattr(session, "memory", None)
        title = "Memory"
        if isinstance(memory, dict) and self.text:
            where = "in the prompt" if memory.get("shown") else "not in the prompt yet"
            title = f"Memory · {memory.get('covers', '?')} messages · {where}"
        self.query_one(".title", Static).update(title)
        shown = self.text if len(self.text) <= 400 else self.text[:399] + "…"
        error = getattr(session, "memory_error", None)
        if error:  # the last summary could not be written: say why, under what is kept
            shown = f"{shown}\n(The last summary could not be written: {error})".strip()
        self.query_one("#memory-text", Static).update(shown or EMPTY)

    def save(self, session: Any, text: str) -> bool:
        """Store an edited summary where it was read from; False when there is nowhere."""
        setter = getattr(session, "set_memory", None)
        if callable(setter):
            setter(text)
        elif self.holder is not None and (m := session.chat.find(self.holder)) is not None:
            from rp_context.memory import MEMORY_KEY

            m.extra[MEMORY_KEY] = text
            session.save()
        else:
            return False
        self.show_session(session)
        return True
