"""Modal screens typed by their result: pick from a list, confirm, ask for a line, edit a message,
import a file, settings. Every dialog is centred (the `modal` class) and Esc cancels."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import ValidationError
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Select, Static, TextArea
from textual.widgets.option_list import Option

from rp_context.errors import RPContextError
from rp_context.models import check_gguf
from rp_context.paths import user_data_dir
from rp_context.presets.library import list_presets

from ..config import Settings, settings_path
from ..crashlog import report_error
from ..library import ImportResult, import_file
from ..messages import FileImported, LoadFailed

__all__ = ["PickScreen", "ConfirmScreen", "AskScreen", "EditScreen", "ImportScreen",
           "SettingsScreen", "SaveDialog", "save_buttons"]

ResultT = TypeVar("ResultT")


def save_buttons(save: str = "Save (ctrl+s)", cancel: str = "Cancel (esc)") -> Horizontal:
    """The row of Save and Cancel buttons every editing dialog ends with."""
    return Horizontal(Button(save, id="save", variant="primary"), Button(cancel, id="cancel"),
                      classes="buttons")


class SaveDialog(ModalScreen[ResultT], Generic[ResultT]):
    """A dialog that saves or cancels: the Save button and ctrl+s run `action_save`; Cancel and
    Esc dismiss it with `CANCELLED`."""

    BINDINGS = [Binding("ctrl+s", "save", "Save"), Binding("escape", "cancel", "Cancel")]
    CANCELLED: Any = None

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self.action_save()
        else:
            self.dismiss(self.CANCELLED)

    def action_save(self) -> None:
        raise NotImplementedError

    def action_cancel(self) -> None:
        self.dismiss(self.CANCELLED)

    def action_dismiss_none(self) -> None:
        self.dismiss(self.CANCELLED)


class PickScreen(ModalScreen[str | None]):
    """Choose one of `options` (id, label, problem); a broken entry shows its problem and is disabled."""

    BINDINGS = [Binding("escape", "dismiss_none", "Cancel")]

    def __init__(self, title: str, options: list[tuple[str, str, str | None]], *,
                 hint: str = "") -> None:
        super().__init__(classes="modal")
        self.title_text = title
        self.options = options
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            opts = [  # plain Text: "[sample]" in a label is text, not markup
                Option(Text(label if problem is None else f"{label}  ✗ {problem}"), id=oid,
                       disabled=problem is not None)
                for oid, label, problem in self.options
            ]
            yield OptionList(*opts, id="pick-list")
            if self.hint:
                yield Static(self.hint, classes="hint")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    """Ask once before something that cannot be undone: y or Enter does it, n or Esc keeps."""

    BINDINGS = [
        Binding("y,enter", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str, detail: str = "", *, yes: str = "Delete") -> None:
        super().__init__(classes="modal")
        self.question = question
        self.detail = detail
        self.yes = yes

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="confirm"):
            yield Label(self.question, classes="dialog-title")
            if self.detail:
                yield Static(self.detail, classes="hint", markup=False)
            with Horizontal(classes="buttons"):
                yield Button(f"{self.yes} (y)", id="yes", variant="error")
                yield Button("Keep (n / esc)", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class AskScreen(ModalScreen[str | None]):
    """Ask for one line of text (a chat's new name, a persona's name); Enter accepts."""

    BINDINGS = [Binding("escape", "dismiss_none", "Cancel")]

    def __init__(self, title: str, value: str = "", *, hint: str = "") -> None:
        super().__init__(classes="modal")
        self.title_text = title
        self.value = value
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            yield Input(self.value, id="ask-input")
            yield Static("", id="ask-error", classes="error", markup=False)
            if self.hint:
                yield Static(self.hint, classes="hint", markup=False)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.value.strip():
            self.dismiss(event.value.strip())

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


class EditScreen(SaveDialog[str | None]):
    """Edit a message's text; ctrl+s saves, Esc cancels."""

    def __init__(self, title: str, text: str) -> None:
        super().__init__(classes="modal")
        self.title_text = title
        self.text = text

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label(self.title_text, classes="dialog-title")
            yield TextArea(self.text, id="edit-text", soft_wrap=True)
            yield save_buttons()

    def action_save(self) -> None:
        self.dismiss(self.query_one(TextArea).text)


class ImportScreen(ModalScreen[ImportResult | None]):
    """Import a card (JSON, PNG, CHARX, YAML), a persona or a SillyTavern preset from a path."""

    BINDINGS = [Binding("escape", "dismiss_none", "Cancel")]

    def __init__(self) -> None:
        super().__init__(classes="modal")

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Import a card, persona or SillyTavern preset", classes="dialog-title")
            yield Input(placeholder="path to the file, e.g. ~/Downloads/Seraphina.png", id="import-path")
            yield Static("", id="import-error", classes="error", markup=False)
            yield Static(f"Copied into {user_data_dir()}", classes="hint", markup=False)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        path = event.value.strip().strip("'\"")
        if not path:
            return
        self.query_one("#import-error", Static).update("Importing… (the file is read and checked)")
        self._import(path)

    @work(thread=True, exclusive=True, group="import", exit_on_error=False)
    def _import(self, path: str) -> None:
        """Check and copy the file off the UI thread (a card may be a large PNG or CHARX)."""
        try:
            self.post_message(FileImported(import_file(path)))
        except Exception as exc:  # noqa: BLE001 - a file that cannot be imported is a notice
            self.post_message(LoadFailed("Import", exc, isinstance(exc, RPContextError)))

    @on(FileImported)
    def _imported(self, event: FileImported) -> None:
        self.dismiss(event.result)

    @on(LoadFailed)
    def _not_imported(self, event: LoadFailed) -> None:
        self.query_one("#import-error", Static).update(f"Not imported: {event.error}")
        if not event.expected:
            report_error(self.app, event.error, event.what)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


_NO_VALUE = getattr(Select, "NULL", getattr(Select, "BLANK", None))
"""Select's "nothing chosen" (NULL since Textual 1.0, BLANK before)."""


def _sampler_options() -> list[tuple[str, str]]:
    try:
        return [(f"{e.name} ({e.origin})", e.name) for e in list_presets("sampler")]
    except RPContextError:
        return []


class SettingsScreen(ModalScreen[Settings | None]):
    """Model path, context size, GPU layers, reply length, sampler preset, summary server and
    the newline key.
    A model path is checked before the dialog closes; the app saves the settings only once they
    were applied. `problem` says what was wrong with the saved settings at start-up."""

    BINDINGS = [Binding("escape", "dismiss_none", "Cancel"), Binding("ctrl+s", "save", "Save")]

    def __init__(self, settings: Settings, *, problem: str = "") -> None:
        super().__init__(classes="modal")
        self.settings = settings
        self.problem = problem

    def compose(self) -> ComposeResult:
        s = self.settings
        with VerticalScroll(classes="dialog", id="settings-dialog"):
            yield Label("Settings", classes="dialog-title")
            if self.problem:
                yield Static(f"Fix this: {self.problem}", id="settings-problem", classes="error",
                             markup=False)
            yield Label("Model (GGUF file; empty: the bundled SmolLM2-135M)")
            yield Input(s.model or "", id="set-model")
            with Horizontal(classes="row"):
                with Vertical():
                    yield Label("Context size (tokens)")
                    yield Input(str(s.context), id="set-context", type="integer")
                with Vertical():
                    yield Label("GPU layers (-1 all, 0 none)")
                    yield Input(str(s.n_gpu_layers), id="set-gpu", type="integer")
            with Horizontal(classes="row"):
                with Vertical():
                    yield Label("Reply length (tokens; empty: preset's)")
                    yield Input(str(s.reply_length or ""), id="set-reply", type="integer")
                with Vertical():
                    yield Label("Sampler preset")
                    yield Select(_sampler_options(), value=s.sampler or _NO_VALUE,
                                 id="set-sampler", prompt="the bundle's")
            yield Label("Summary server (URL that writes the memory; empty: the chat's model)")
            yield Input(s.summary_server or "", id="set-summary-server")
            yield Label("New line in the message box (Enter sends; ctrl+j always works)")
            yield Select([("shift+enter", "shift+enter"), ("ctrl+j only", "ctrl+j")],
                         value=s.newline_key, id="set-newline", allow_blank=False)
            yield Static("", id="settings-error", classes="error", markup=False)
            yield Static(f"Saved to {settings_path()} once applied", classes="hint", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Save (ctrl+s)", id="save", variant="primary")
                yield Button("Cancel", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self.save()
        else:
            self.dismiss(None)

    def on_input_submitted(self) -> None:
        self.save()

    def action_save(self) -> None:
        self.save()

    def _error(self, text: str) -> None:
        self.query_one("#settings-error", Static).update(text)

    def save(self) -> None:
        model = self.query_one("#set-model", Input).value.strip().strip("'\"") or None
        sampler = self.query_one("#set-sampler", Select).value
        try:
            new = Settings.model_validate({
                **self.settings.model_dump(),
                "model": model,
                "context": self.query_one("#set-context", Input).value or 0,
                "n_gpu_layers": self.query_one("#set-gpu", Input).value or 0,
                "reply_length": self.query_one("#set-reply", Input).value or None,
                "sampler": sampler if isinstance(sampler, str) else None,
                "summary_server": self.query_one("#set-summary-server", Input).value.strip() or None,
                "newline_key": self.query_one("#set-newline", Select).value,
            })
        except ValidationError as exc:
            err = exc.errors()[0]
            self._error(f"{err['loc'][0]}: {err['msg']}")
            return
        if new.model is not None:
            try:
                check_gguf(new.model)
            except RPContextError as exc:
                self._error(str(exc))
                return
        self.dismiss(new)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
