"""Type aliases shared across the library, each defined once here and imported where used."""

from __future__ import annotations

from typing import Literal

__all__ = ["Role", "ROLES", "Mode"]

Role = Literal["system", "user", "assistant"]
"""Who speaks a turn, in chat-completion terms."""

ROLES: tuple[Role, ...] = ("system", "user", "assistant")
"""The roles in SillyTavern's numeric order: 0 system, 1 user, 2 assistant."""

Mode = Literal["normal", "continue", "impersonate"]
"""What the next generation is: a reply, a continuation of the last reply, or the user's line."""
