"""World info (lorebooks): which entries fire for a chat, where they go, and why, as SillyTavern 1.12.6 decides.

    result = activate_world_info([book], chat, counter=counter, max_context_tokens=8192,
                                 seed=f"{chat_id}:{len(chat)}")
    result.before_text(), result.after_text(), result.depth_injections(), result.decisions
"""

from __future__ import annotations

from .activate import activate_world_info
from .decorators import Decorators, parse_decorators
from .matching import ScanMessage, parse_regex_key
from .result import (
    DecisionStatus,
    DepthInjection,
    FiredEntry,
    LoreDecision,
    Position,
    Role,
    WorldInfoResult,
)
from .settings import WorldInfoSettings

__all__ = [
    "DecisionStatus",
    "Decorators",
    "DepthInjection",
    "FiredEntry",
    "LoreDecision",
    "Position",
    "Role",
    "ScanMessage",
    "WorldInfoResult",
    "WorldInfoSettings",
    "activate_world_info",
    "parse_decorators",
    "parse_regex_key",
]
