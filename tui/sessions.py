"""What a chat is opened from (cards or a roster, persona, preset) and opening it as a ChatSession.

Without an explicit chat file the app resumes the character's (or group's) latest chat, or starts
a new one under the user data folder; either way the file exists and is saved as soon as it opens.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rp_context.cards import load_card, load_roster
from rp_context.chatfolder import author_note_of
from rp_context.paths import default_card_path
from rp_context.presets.library import load_preset
from rp_context.sampling import SamplerSettings
from rp_context.session import ChatSession

from .config import Settings, latest_chat, new_chat_path

__all__ = ["ChatSpec", "apply_settings", "cast_name", "open_session"]


@dataclass(frozen=True)
class ChatSpec:
    """Which chat to open: cards (one, or several for a join group) or a roster, and its setup."""

    cards: tuple[str, ...] = ()
    roster: str | None = None
    persona: str | None = None
    """None: the settings' persona."""
    preset: str | None = None
    """None: the settings' preset (else the default bundle)."""
    budget: str | None = None
    chat: Path | None = None
    """A chat file to open; None: the latest chat of this cast, or a new one."""
    server: str | None = None
    reserve: int | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def with_cards(self) -> ChatSpec:
        """The spec with the sample card filled in when it names nobody."""
        if self.cards or self.roster:
            return self
        return replace(self, cards=(str(default_card_path()),))


def cast_name(spec: ChatSpec) -> str:
    """The name chats of this cast are filed under: the roster's name, else the cards' names."""
    if spec.roster:
        return load_roster(spec.roster).roster.name
    names = [load_card(c).card.data.name or Path(c).stem for c in spec.cards]
    return ", ".join(names)


def open_session(spec: ChatSpec, settings: Settings, *, backend: Any = None, counter: Any = None,
                 fresh: bool = False) -> ChatSession:
    """Open the chat `spec` names with `settings` (model, context, GPU layers); `fresh` starts a
    new chat file even when an older one exists. Raises RPContextError on any bad input."""
    spec = spec.with_cards()
    chat = spec.chat
    if chat is None:
        name = cast_name(spec)
        chat = (None if fresh else latest_chat(name)) or new_chat_path(name)
    session = ChatSession.open(
        cards=list(spec.cards),
        roster=spec.roster,
        persona=spec.persona or settings.persona,
        chat_path=chat,
        preset=spec.preset or settings.preset,
        budget=spec.budget,
        model=settings.model,
        n_ctx=settings.context,
        reserve=spec.reserve,
        n_gpu_layers=settings.n_gpu_layers,
        server=spec.server,
        backend=backend,
        counter=counter,
    )
    apply_settings(session, settings)
    return session


def apply_settings(session: ChatSession, settings: Settings) -> None:
    """Put the settings the session does not take when opening onto it: the sampler preset, the
    reply length, and the chat's own author's note. Raises PresetError for an unknown sampler."""
    sampler = session.setup.sampler
    if settings.sampler:
        preset = load_preset(settings.sampler, "sampler")
        sampler = SamplerSettings(**preset.model_dump(exclude={"name", "description"}))
    if settings.reply_length:
        sampler = sampler.model_copy(update={"max_tokens": settings.reply_length})
    session.setup.sampler = sampler
    session.settings = session.settings.model_copy(update={"author_note": author_note_of(session.chat)})
