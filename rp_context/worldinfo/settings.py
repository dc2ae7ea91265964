"""World-info scan settings: SillyTavern's global `world_info_*` settings, with its defaults."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["WorldInfoSettings", "MAX_SCAN_DEPTH"]

MAX_SCAN_DEPTH = 1000
"""SillyTavern's hard limit on any scan depth."""

_ST_KEYS = {
    "world_info_depth": "scan_depth",
    "world_info_budget": "budget_percent",
    "world_info_budget_cap": "budget_cap",
    "world_info_include_names": "include_names",
    "world_info_recursive": "recursive",
    "world_info_case_sensitive": "case_sensitive",
    "world_info_match_whole_words": "match_whole_words",
    "world_info_max_recursion_steps": "max_recursion_steps",
    "world_info_min_activations": "min_activations",
    "world_info_min_activations_depth_max": "min_activations_depth_max",
    "world_info_use_group_scoring": "use_group_scoring",
}


class WorldInfoSettings(BaseModel):
    """How lorebooks are scanned and how much of the context they may take.

    The defaults are SillyTavern's shipped `world_info_settings`; per-entry fields
    (scan depth, case sensitivity, whole words, group scoring) override them.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    scan_depth: int = Field(2, ge=0, le=MAX_SCAN_DEPTH)
    """How many of the newest chat messages are scanned for keys."""
    budget_percent: float = Field(25, ge=0, le=100)
    """World info may use this share of the context window, in percent."""
    budget_cap: int = Field(0, ge=0)
    """A hard cap on the budget in tokens; 0 means no cap."""
    include_names: bool = True
    """Scan `Name: text` rather than the bare text of each message."""
    recursive: bool = True
    """Activated entries' content is scanned again for more keys."""
    case_sensitive: bool = False
    match_whole_words: bool = True
    """A single-word key must stand alone (punctuation counts as a boundary)."""
    max_recursion_steps: int = Field(0, ge=0)
    """Stop after this many scan passes; 0 means no limit."""
    min_activations: int = Field(0, ge=0)
    """Keep widening the scan depth until this many entries fired; 0 turns it off."""
    min_activations_depth_max: int = Field(0, ge=0)
    """The widest scan depth min-activations may reach; 0 means the whole chat."""
    use_group_scoring: bool = False
    """In an inclusion group, only the members with the most key matches compete."""
    constant_outside_budget: bool = False
    """Constant entries always fire and do not use up the budget (like SillyTavern's `ignoreBudget`)."""
    decorators: bool = True
    """Read `@@decorator` lines at the start of an entry's content (and strip them)."""

    @classmethod
    def from_sillytavern(cls, settings: Mapping[str, Any]) -> WorldInfoSettings:
        """Settings from SillyTavern's `world_info_settings` (its `world_info_*` keys; others ignored)."""
        values = {ours: settings[theirs] for theirs, ours in _ST_KEYS.items() if theirs in settings}
        return cls.model_validate(values)

    def budget_tokens(self, max_context_tokens: int) -> int:
        """The token budget for this context size: SillyTavern's `round(pct × ctx / 100) || 1`, capped."""
        budget = int(self.budget_percent * max_context_tokens / 100 + 0.5) or 1
        if self.budget_cap > 0 and budget > self.budget_cap:
            budget = self.budget_cap
        return budget
