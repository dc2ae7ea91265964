"""Which chat this is and who is in it, and the one macro context its messages are expanded in.

Assembly (the prompt) and `ChatSession.display_text` (the screen) both expand a message with
`message_text` over the chat's `identify` result, and read and write the same frozen values
(`{{random}}`, `{{roll}}`, time macros) in the message's `extra`: what the screen shows is what
the model gets.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .cards.model import Card
from .cards.persona import Persona
from .cards.roster import GroupRoster
from .chat import Chat, ChatMessage, parse_send_date
from .macros import MacroContext, expand_macros
from .safeload import flat_name

__all__ = [
    "FROZEN_KEY",
    "ChatIdentity",
    "chat_id",
    "user_name",
    "member_names",
    "identify",
    "message_text",
    "frozen_store",
    "has_macros",
    "parse_date",
]

FROZEN_KEY = "rp_context_macros"
"""Where frozen macro values live: a message's `extra`, or the chat metadata for card text."""

_MARKS = ("{{", "<USER>", "<BOT>", "<CHAR>")


def chat_id(chat: Chat) -> str:
    """The chat's identity: seeds `{{pick}}`, the random macros, world info and who speaks next."""
    header = chat.header
    base = f"{header.character_name}|{header.create_date}" if header else ""
    if not base.strip("|"):
        first = chat.messages[0].id if chat.messages else ""
        base = f"chat|{first}"
    return hashlib.sha256(base.encode()).hexdigest()[:16]


def user_name(persona: Persona | None, chat: Chat | None = None,
              warn: Callable[[str], None] | None = None) -> str:
    """The user's name: the persona's, else the chat file's, else "User"; always on one line."""
    if persona is not None and persona.name:
        name = persona.name
    else:
        name = chat.user_name if chat is not None else "User"
    return flat_name(name, warn, "user name")  # a line break could forge a turn


def member_names(cards: Sequence[Card], roster: GroupRoster | None = None) -> list[str]:
    """Who is in the chat, in the roster's order (the cards' order without a roster)."""
    if roster is None:
        return [c.data.name for c in cards]
    from .group import group_members

    return [m.name for m in group_members(roster, list(cards))]


def parse_date(value: Any) -> datetime | None:
    """A SillyTavern timestamp as a datetime; None when it is missing or unreadable."""
    try:
        return parse_send_date(value)
    except (ValueError, TypeError):
        return None


def frozen_store(container: dict[str, Any]) -> dict[str, str]:
    """The frozen macro values kept in `container` (a message's `extra` or the chat metadata)."""
    store = container.get(FROZEN_KEY)
    if not isinstance(store, dict):
        store = {}
        container[FROZEN_KEY] = store
    return store


@dataclass(frozen=True)
class ChatIdentity:
    """What every macro in a chat is expanded with: the chat, the user, the members."""

    chat_id: str
    user: str
    members: tuple[str, ...]
    card_names: frozenset[str]
    created: datetime | None = None
    """When the chat began: the time macros of text without its own date read it."""

    @property
    def group(self) -> str:
        """The members joined with commas in a group chat; "" one-on-one."""
        return ", ".join(self.members) if len(self.members) > 1 else ""

    def author(self, message: ChatMessage) -> str:
        """Whose `{{char}}` a message means: its speaker's for a card's reply, else the first member."""
        if message.role == "assistant" and message.name in self.card_names:
            return message.name
        return self.members[0]


def identify(chat: Chat, cards: Sequence[Card], *, roster: GroupRoster | None = None,
             persona: Persona | None = None,
             warn: Callable[[str], None] | None = None) -> ChatIdentity:
    """The chat's identity and cast, derived once for the prompt and the screen alike."""
    return ChatIdentity(
        chat_id=chat_id(chat),
        user=user_name(persona, chat, warn),
        members=tuple(member_names(cards, roster)),
        card_names=frozenset(c.data.name for c in cards),
        created=parse_date(chat.header.create_date) if chat.header is not None else None,
    )


def has_macros(text: str) -> bool:
    """Whether `text` (carriage returns already removed) holds anything macros would change."""
    return any(mark in text for mark in _MARKS)


def message_text(message: ChatMessage, who: ChatIdentity, *, now: datetime | None = None,
                 warnings: list[str] | None = None) -> str:
    """A message's text as the prompt carries it: macros expanded, each random value and time
    frozen in the message's `extra` on first use; time macros read its send date (or `now`)."""
    text = message.text.replace("\r", "")
    if not has_macros(text):
        return text
    when = now or parse_date(message.send_date) or who.created
    ctx = MacroContext(
        user=who.user,
        char=who.author(message),
        group=who.group,
        chat_id=who.chat_id,
        now=(lambda: when) if when is not None else (lambda: datetime.now().astimezone()),
        frozen=frozen_store(message.extra),
        seed=f"{who.chat_id}:msg:{message.id}",
        warnings=warnings,
    )
    return expand_macros(text, ctx)
