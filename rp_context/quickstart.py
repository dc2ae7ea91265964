"""The first vertical slice: one card, ChatML, one user message, the default model.

Deliberately thin; the assembly, budget and backend modules replace it piece by piece.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .tokens import TextPart

__all__ = ["SimpleCard", "read_simple_card", "chatml_parts"]


class SimpleCard:
    """The few card fields the slice uses."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.name = str(data.get("name") or "Character")
        self.description = str(data.get("description") or "")
        self.personality = str(data.get("personality") or "")
        self.scenario = str(data.get("scenario") or "")
        self.first_mes = str(data.get("first_mes") or "")
        self.system_prompt = str(data.get("system_prompt") or "")


def read_simple_card(path: str | Path) -> SimpleCard:
    """Read a card in any format `rp_context.cards.load_card` reads (JSON V1/V2/V3, PNG, CHARX, YAML)."""
    from .cards import load_card

    return SimpleCard(load_card(path).card.data.to_dict())


def _macros(text: str, char: str, user: str) -> str:
    return text.replace("{{char}}", char).replace("{{user}}", user)


def chatml_parts(
    card: SimpleCard,
    message: str,
    *,
    user: str = "User",
    history: Sequence[tuple[str, str]] = (),
) -> list[TextPart]:
    """ChatML prompt parts: a system turn with the card, the greeting, earlier turns, the message."""
    sys_lines = [card.system_prompt or f"You are {card.name}. Stay in character and reply as {card.name}."]
    for label, value in (
        ("Description", card.description),
        ("Personality", card.personality),
        ("Scenario", card.scenario),
    ):
        if value.strip():
            sys_lines.append(f"{label}: {value.strip()}")
    system = _macros("\n".join(sys_lines), card.name, user)
    turns: list[tuple[str, str]] = [("system", system)]
    if card.first_mes.strip():
        turns.append(("assistant", _macros(card.first_mes, card.name, user)))
    turns.extend(history)
    turns.append(("user", message))
    parts: list[TextPart] = []
    for role, content in turns:
        parts.append(TextPart(f"<|im_start|>{role}\n", special=True))
        parts.append(TextPart(content))
        parts.append(TextPart("<|im_end|>\n", special=True))
    parts.append(TextPart("<|im_start|>assistant\n", special=True))
    return parts
