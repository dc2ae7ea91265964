"""What a chat is opened from (cards or a roster, persona, preset) and opening it as a ChatSession.

Without an explicit chat file the app resumes the character's (or group's) latest chat, or starts
a new one under the user data folder; either way the file exists and is saved as soon as it opens.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rp_context.backends.base import Backend
from rp_context.chatfolder import author_note_of, cast_chat_name, cast_chat_path
from rp_context.paths import default_card_path
from rp_context.session import ChatSession, SessionOptions
from rp_context.tokens import TokenCounter

from .config import Settings, chats_dir

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

    def options(self, settings: Settings) -> SessionOptions:
        """The settings' session options with what this spec sets over them."""
        own = {"preset": self.preset, "budget": self.budget, "server": self.server,
               "reserve": self.reserve}
        return settings.session_options().replace(
            **{k: v for k, v in own.items() if v is not None and v != ""})

    def with_cards(self) -> ChatSpec:
        """The spec with the sample card filled in when it names nobody."""
        if self.cards or self.roster:
            return self
        return replace(self, cards=(str(default_card_path()),))


def cast_name(spec: ChatSpec) -> str:
    """The name chats of this cast are filed under (the library's rule)."""
    return cast_chat_name(spec.cards, spec.roster)


def open_session(spec: ChatSpec, settings: Settings, *, backend: Backend | None = None,
                 counter: TokenCounter | None = None, fresh: bool = False) -> ChatSession:
    """Open the chat `spec` names with `settings` (model, context, GPU layers, presets); `fresh`
    starts a new chat file even when an older one exists. Raises RPContextError on bad input."""
    spec = spec.with_cards()
    chat = spec.chat
    if chat is None:
        chat = cast_chat_path(spec.cards, spec.roster, latest=not fresh, root=chats_dir())
    session = ChatSession.open(
        cards=list(spec.cards),
        roster=spec.roster,
        persona=spec.persona or settings.persona,
        chat_path=chat,
        options=spec.options(settings),
        backend=backend,
        counter=counter,
    )
    apply_settings(session, settings)
    return session


def apply_settings(session: ChatSession, settings: Settings) -> None:
    """Put the settings that can change while a chat is open onto it (the sampler preset, the
    reply length and the summary server), and take the chat's own author's note. Raises PresetError for an unknown
    sampler."""
    live = settings.session_options()
    session.apply(session.options.replace(sampler=live.sampler, max_tokens=live.max_tokens,
                                          summary_server=live.summary_server))
    session.settings = session.settings.model_copy(update={"author_note": author_note_of(session.chat)})
