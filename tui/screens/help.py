"""The help screen (F1 or ?): every key, what the side panel shows, where files live. On the
first run it opens by itself with a few lines on how to start."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from rp_context.paths import user_data_dir

__all__ = ["HelpScreen", "KEYS"]

WELCOME = (
    "Welcome to rp-chat. You are talking to a sample character on a small local model. Type and "
    "press Enter. F3 picks another character or group, F5 who you are, F7 the model. Everything "
    "is saved as you go; ctrl+o lists your chats."
)

KEYS: list[tuple[str, list[tuple[str, str]]]] = [
    ("Writing", [
        ("Enter", "send (empty: let them go on)"),
        ("shift+Enter / ctrl+j", "new line (shift+Enter where the terminal tells it apart)"),
        ("Esc", "stop the reply (what came is kept, marked “stopped”)"),
        ("← / →", "with an empty box: swipe the last reply; → past the end writes a new one"),
        ("ctrl+r", "regenerate the last reply (a new swipe)"),
        ("ctrl+t", "continue the last reply"),
        ("ctrl+y", "impersonate: write my next line"),
    ]),
    ("Messages", [
        ("↑", "with an empty box: select the last message (↑/↓ or Tab to move)"),
        ("e", "edit the selected message"),
        ("d", "delete it (asks first)"),
        ("b", "branch: a new chat up to this message"),
        ("Esc", "back to typing"),
    ]),
    ("Chats and people", [
        ("ctrl+o", "chat browser: open, rename, delete chats"),
        ("ctrl+n", "new chat (pick a greeting)"),
        ("F3", "open a character or group"),
        ("F5", "persona: who you are (create or edit)"),
        ("F8", "edit the character's card"),
        ("F9", "author's note for this chat"),
        ("ctrl+g / ctrl+s", "group: let them take a round / pick who speaks"),
    ]),
    ("Setup", [
        ("F2", "prompt inspector: the exact prompt and what was cut"),
        ("F4", "preset bundle or instruct template"),
        ("F6", "import a card, persona or SillyTavern preset"),
        ("F7", "settings: model, context, reply length, sampler, keys"),
        ("ctrl+b", "show or hide the side panel"),
        ("ctrl+p", "command palette: every action by name"),
        ("ctrl+q", "quit"),
    ]),
]


def keys_table() -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for section, rows in KEYS:
        table.add_row(Text(section, style="bold underline"), "")
        for key, what in rows:
            table.add_row(key, what)
        table.add_row("", "")
    return table


class HelpScreen(ModalScreen[None]):
    """Keys and where things live; any of Esc, q, F1 or ? closes it."""

    BINDINGS = [Binding("escape,q,f1,question_mark,enter", "close", "Close")]

    def __init__(self, *, first_run: bool = False) -> None:
        super().__init__(classes="modal")
        self.first_run = first_run

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide", id="help"):
            yield Label("Welcome" if self.first_run else "Keys", classes="dialog-title")
            with VerticalScroll():
                if self.first_run:
                    yield Static(WELCOME, id="welcome", classes="welcome")
                yield Static(keys_table(), id="keys")
                yield Static(f"Your cards, chats, settings and logs: {user_data_dir()}\n"
                             "Keys can be remapped in settings.yaml under `keys:` "
                             "(e.g. regenerate: ctrl+e).", classes="hint", markup=False)
            yield Static("Esc closes", classes="hint")

    def action_close(self) -> None:
        self.dismiss(None)
