"""Editors: a character's card (every prompt field with its live token count and the budget bar
following the edits), the user's persona, and the chat's author's note. Cards and personas are
saved through the library (lossless: unknown keys, the PNG picture and CHARX assets are kept);
a shipped sample card is never changed: the edit becomes your own copy."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.timer import Timer
from textual.widgets import Input, Label, Select, Static, TextArea

from rp_context.assembly import AuthorNote
from rp_context.cards import load_card, load_persona, load_roster, save_card
from rp_context.cards.persona import Persona, save_persona
from rp_context.chatfolder import author_note_of, folder_name, set_author_note
from rp_context.errors import RPContextError
from rp_context.paths import bundled_dir
from rp_context.session import ChatSession

from ..config import cards_dir, personas_dir
from ..messages import PreviewFailed, PreviewReady
from ..sessions import ChatSpec
from ..widgets.budget import BudgetBar, budget_parts
from .modals import SaveDialog, save_buttons

__all__ = ["CARD_FIELDS", "ALT_SEPARATOR", "AuthorNoteScreen", "CardEditorScreen", "PersonaScreen",
           "card_path_of"]

CARD_FIELDS: list[tuple[str, str]] = [
    ("description", "Description"),
    ("personality", "Personality"),
    ("scenario", "Scenario"),
    ("first_mes", "First message (greeting)"),
    ("alternate_greetings", "Alternate greetings (separate them with a line of ---)"),
    ("mes_example", "Example dialogue"),
    ("system_prompt", "System prompt (replaces the preset's; {{original}} keeps it)"),
    ("post_history_instructions", "Post-history instructions"),
]
ALT_SEPARATOR = "\n---\n"


def card_path_of(spec: ChatSpec, index: int) -> Path | None:
    """The file card number `index` of the chat opened from `spec` was loaded from."""
    spec = spec.with_cards()
    if spec.roster:
        paths = load_roster(spec.roster).member_paths()
    else:
        paths = [Path(c) for c in spec.cards]
    return paths[index] if 0 <= index < len(paths) else None


def _is_sample(path: Path) -> bool:
    try:
        return path.resolve().is_relative_to(bundled_dir("cards").resolve())
    except OSError:
        return False


class CardEditorScreen(SaveDialog[ChatSpec | None]):
    """Edit one card of the open chat. Token counts and the budget bar update as you type;
    ctrl+s saves (your copy, for a sample card) and returns the spec to reopen the chat with it;
    Esc drops edits (None)."""

    CANCELLED = None

    def __init__(self, session: ChatSession, spec: ChatSpec, index: int) -> None:
        super().__init__(classes="modal")
        self.session = session
        self.spec = spec
        self.index = index
        self.card = session.cast.cards[index]
        self._timer: Timer | None = None

    def _value(self, key: str) -> str:
        value = getattr(self.card.data, key)
        return ALT_SEPARATOR.join(value) if isinstance(value, list) else str(value or "")

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog full", id="card-editor"):
            yield Label(f"Edit {self.card.data.name}'s card", classes="dialog-title")
            yield Static("", id="card-budget-title", markup=False)
            yield BudgetBar(id="card-budget-bar")
            with VerticalScroll(id="card-fields"):
                for key, label in CARD_FIELDS:
                    yield Label(label, id=f"label-{key}", classes="field-label")
                    yield TextArea(self._value(key), id=f"field-{key}", soft_wrap=True,
                                   classes="field")
            yield Static("", id="card-error", classes="error", markup=False)
            yield save_buttons()

    def on_mount(self) -> None:
        for key, _ in CARD_FIELDS:
            self._count(key)
        self._recompute()
        self.query_one(f"#field-{CARD_FIELDS[0][0]}", TextArea).focus()

    def _edited_data(self) -> Any:
        update: dict[str, Any] = {}
        for key, _ in CARD_FIELDS:
            text = self.query_one(f"#field-{key}", TextArea).text
            if key == "alternate_greetings":
                update[key] = [g.strip() for g in text.split(ALT_SEPARATOR) if g.strip()]
            else:
                update[key] = text
        return self.card.data.model_copy(update=update)

    def _count(self, key: str) -> None:
        text = self.query_one(f"#field-{key}", TextArea).text
        label = dict(CARD_FIELDS)[key]
        try:
            n = self.session.counter.count(text)
            self.query_one(f"#label-{key}", Label).update(f"{label} · {n:,} tokens")
        except Exception:  # noqa: BLE001 - a count is a hint; the edit still works without it
            self.query_one(f"#label-{key}", Label).update(label)

    @on(TextArea.Changed, ".field")
    def _changed(self, event: TextArea.Changed) -> None:
        key = (event.text_area.id or "").removeprefix("field-")
        if key:
            self._count(key)
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(0.3, self._recompute)

    def _recompute(self) -> None:
        self._preview(self._edited_data())

    @work(thread=True, exclusive=True, group="card-preview", exit_on_error=False)
    def _preview(self, data: Any) -> None:
        """The next prompt as it would be with the edited card (the open chat is not changed)."""
        s = self.session
        cards = list(s.cast.cards)
        cards[self.index] = self.card.model_copy(update={"data": data})
        from rp_context.pipeline import build_prompt

        try:
            fitted = build_prompt(replace(s.cast, cards=cards), s.chat.model_copy(deep=True),
                                  s.setup, s.counter, n_ctx=s.n_ctx, reserve=s.reserve,
                                  settings=s.settings)
        except RPContextError as exc:
            self.post_message(PreviewFailed(str(exc)))
            return
        self.post_message(PreviewReady(fitted, 0))

    @on(PreviewFailed)
    def _no_budget(self, event: PreviewFailed) -> None:
        self.query_one("#card-budget-title", Static).update(f"prompt: {event.reason}")

    @on(PreviewReady)
    def _show_budget(self, event: PreviewReady) -> None:
        title = self.query_one("#card-budget-title", Static)
        report = event.fitted.report
        parts = budget_parts(report)
        self.query_one(BudgetBar).set_parts(parts)
        dropped = f" · {len(report.dropped)} message(s) out of context" if report.dropped else ""
        title.update(f"Next prompt {report.tokens:,} / {report.n_ctx:,} tokens · card "
                     f"{parts['card']:,}{dropped}")

    def action_save(self) -> None:
        source = card_path_of(self.spec, self.index)
        if source is None:
            self.query_one("#card-error", Static).update("cannot tell which file this card is")
            return
        try:
            loaded = load_card(source)
            loaded.card = loaded.card.model_copy(update={"data": self._edited_data()})
            target = source
            if _is_sample(source):
                target = cards_dir() / source.name
                n = 2
                while target.exists():
                    target = cards_dir() / f"{source.stem}-{n}{source.suffix}"
                    n += 1
            warnings = save_card(loaded, target)
        except RPContextError as exc:
            self.query_one("#card-error", Static).update(f"Not saved: {exc}")
            return
        for w in warnings[:2]:
            self.notify(w, severity="warning")
        self.notify(f"Saved {target}", title="Card")
        spec = replace(self.spec.with_cards(), chat=self.session.chat_path)
        if target != source and spec.roster:
            self.notify("Group members are read from the roster: point it at your copy to use it.",
                        severity="warning", timeout=10)
            self.dismiss(None)
            return
        if target != source:
            cards = list(spec.cards)
            cards[self.index] = str(target)
            spec = replace(spec, cards=tuple(cards))
        self.dismiss(spec)


class PersonaScreen(SaveDialog[Path | None]):
    """Create or edit a persona: your name and who you are. Saved under personas/ (YAML)."""

    def __init__(self, path: Path | None) -> None:
        super().__init__(classes="modal")
        self.path = path
        self.persona = Persona()
        self.problem = ""
        if path is not None:
            try:
                self.persona = load_persona(path).persona
            except RPContextError as exc:
                self.problem = str(exc)

    def compose(self) -> ComposeResult:
        p = self.persona
        with Vertical(classes="dialog wide", id="persona-editor"):
            yield Label("Edit your persona" if self.path else "Create a persona",
                        classes="dialog-title")
            yield Label("Your name ({{user}})")
            yield Input(p.name if self.path else "", id="persona-name", placeholder="e.g. Tess")
            yield Label("Who you are (goes into the prompt)")
            yield TextArea(p.description, id="persona-description", soft_wrap=True)
            yield Static(self.problem, id="persona-error", classes="error", markup=False)
            yield save_buttons("Save and use (ctrl+s)")

    def action_save(self) -> None:
        name = self.query_one("#persona-name", Input).value.strip()
        if not name:
            self.query_one("#persona-error", Static).update("Give your persona a name.")
            return
        persona = self.persona.model_copy(update={
            "name": name, "description": self.query_one("#persona-description", TextArea).text})
        target = self.path
        if target is None or _is_sample(target) or target.suffix.lower() not in (".yaml", ".yml",
                                                                                 ".json"):
            target = personas_dir() / f"{folder_name(name)}.persona.yaml"
            n = 2
            while target.exists():
                target = personas_dir() / f"{folder_name(name)}-{n}.persona.yaml"
                n += 1
        try:
            save_persona(persona, target)
        except RPContextError as exc:
            self.query_one("#persona-error", Static).update(f"Not saved: {exc}")
            return
        self.dismiss(target)


class AuthorNoteScreen(SaveDialog[bool]):
    """The chat's author's note: text, depth (messages from the end) and interval (every N-th
    user message; 0 never). Saved in the chat file where SillyTavern keeps it."""

    CANCELLED = False

    def __init__(self, session: ChatSession) -> None:
        super().__init__(classes="modal")
        self.session = session
        self.note = author_note_of(session.chat)

    def compose(self) -> ComposeResult:
        n = self.note
        with Vertical(classes="dialog wide", id="note-editor"):
            yield Label("Author's note for this chat", classes="dialog-title")
            yield TextArea(n.text, id="note-text", soft_wrap=True)
            with Horizontal(classes="row"):
                with Vertical():
                    yield Label("Depth (messages from the end)")
                    yield Input(str(n.depth), id="note-depth", type="integer")
                with Vertical():
                    yield Label("Every N-th user message (0: off)")
                    yield Input(str(n.interval), id="note-interval", type="integer")
                with Vertical():
                    yield Label("As")
                    yield Select([(r, r) for r in ("system", "user", "assistant")], value=n.role,
                                 id="note-role", allow_blank=False)
            yield Static("", id="note-error", classes="error", markup=False)
            yield save_buttons()

    def action_save(self) -> None:
        try:
            note = AuthorNote(
                text=self.query_one("#note-text", TextArea).text,
                depth=int(self.query_one("#note-depth", Input).value or 0),
                interval=int(self.query_one("#note-interval", Input).value or 0),
                role=self.query_one("#note-role", Select).value,  # type: ignore[arg-type]
            )
        except (ValidationError, ValueError) as exc:
            self.query_one("#note-error", Static).update(f"Not saved: {exc}")
            return
        s = self.session
        set_author_note(s.chat, note)
        s.settings = s.settings.model_copy(update={"author_note": note})
        try:
            s.save()
        except RPContextError as exc:
            self.query_one("#note-error", Static).update(f"Not saved: {exc}")
            return
        self.dismiss(True)
