"""Modal screens typed by their result: pick from a list, edit a message, import a file, settings."""

from __future__ import annotations

from pydantic import ValidationError
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Static, TextArea
from textual.widgets.option_list import Option

from rp_context.errors import RPContextError
from rp_context.paths import user_data_dir

from ..config import Settings, settings_path
from ..library import ImportResult, import_file

__all__ = ["PickScreen", "EditScreen", "ImportScreen", "SettingsScreen"]


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
            opts = [
                Option(label if problem is None else f"{label}  ✗ {problem}", id=oid,
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


class EditScreen(ModalScreen[str | None]):
    """Edit a message's text; ctrl+s saves, Esc cancels."""

    BINDINGS = [Binding("ctrl+s", "save", "Save"), Binding("escape", "dismiss_none", "Cancel")]

    def __init__(self, title: str, text: str) -> None:
        super().__init__(classes="modal")
        self.title_text = title
        self.text = text

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label(self.title_text, classes="dialog-title")
            yield TextArea(self.text, id="edit-text", soft_wrap=True)
            with Horizontal(classes="buttons"):
                yield Button("Save (ctrl+s)", id="save", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self.action_save()
        else:
            self.dismiss(None)

    def action_save(self) -> None:
        self.dismiss(self.query_one(TextArea).text)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


class ImportScreen(ModalScreen[ImportResult | None]):
    """Import a card (JSON, PNG, CHARX, YAML), a persona or a SillyTavern preset from a path."""

    BINDINGS = [Binding("escape", "dismiss_none", "Cancel")]

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
        try:
            result = import_file(path)
        except RPContextError as exc:
            self.query_one("#import-error", Static).update(f"Not imported: {exc}")
            return
        self.dismiss(result)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


class SettingsScreen(ModalScreen[Settings | None]):
    """Model path, context size and GPU layers; shows where the settings and data live."""

    BINDINGS = [Binding("escape", "dismiss_none", "Cancel")]

    def __init__(self, settings: Settings) -> None:
        super().__init__(classes="modal")
        self.settings = settings

    def compose(self) -> ComposeResult:
        s = self.settings
        with Vertical(classes="dialog"):
            yield Label("Settings", classes="dialog-title")
            yield Label("Model (GGUF file; empty: the bundled SmolLM2-135M)")
            yield Input(s.model or "", id="set-model")
            yield Label("Context size (tokens)")
            yield Input(str(s.context), id="set-context", type="integer")
            yield Label("GPU layers (-1: all, 0: CPU only)")
            yield Input(str(s.n_gpu_layers), id="set-gpu", type="integer")
            yield Static("", id="settings-error", classes="error", markup=False)
            yield Static(f"Saved to {settings_path()}", classes="hint", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Save", id="save", variant="primary")
                yield Button("Cancel", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self.save()
        else:
            self.dismiss(None)

    def on_input_submitted(self) -> None:
        self.save()

    def save(self) -> None:
        model = self.query_one("#set-model", Input).value.strip() or None
        try:
            new = self.settings.model_copy(update={})
            new = Settings.model_validate({
                **self.settings.model_dump(),
                "model": model,
                "context": self.query_one("#set-context", Input).value or 0,
                "n_gpu_layers": self.query_one("#set-gpu", Input).value or 0,
            })
        except ValidationError as exc:
            err = exc.errors()[0]
            self.query_one("#settings-error", Static).update(f"{err['loc'][0]}: {err['msg']}")
            return
        self.dismiss(new)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
