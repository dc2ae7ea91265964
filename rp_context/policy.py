"""Budget policies: which reductions the budget manager may use, as a YAML preset kind."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["BudgetPolicy", "ExamplesPolicy"]

ExamplesPolicy = Literal["keep", "never", "gradual", "threshold"]


class BudgetPolicy(BaseModel):
    """How the budget manager shrinks a prompt; a YAML preset kind (`presets/budget/`)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    name: str = "cache-stable"
    """Preset name."""
    description: str | None = None
    """What the policy is for."""
    batching: bool = True
    """Consecutive messages of one role share one turn, with `Name:` lines inside."""
    consolidation: bool = True
    """Narrator (system) messages of a round join the character's turn."""
    stripping: bool = True
    """Oldest history band keeps content only, middle band role markers only."""
    strip_bands: tuple[float, float, float] = (0.25, 0.5, 0.25)
    """Shares of the kept history: content-only, markers-only, full structure (oldest first)."""
    examples: ExamplesPolicy = "threshold"
    """keep: always; never; gradual: SillyTavern's push-out; threshold: all dropped at once."""
    eviction: Literal["chunked", "per_message"] = "chunked"
    """chunked: evict to the low-water mark in one step; per_message: SillyTavern's trimming."""
    keyword_lore: Literal["story", "tail"] = "tail"
    """Keyword-activated world info: "tail" (a system turn before the newest message, so lore
    that comes and goes does not shift the whole prompt) or "story" (SillyTavern: at the top)."""
    low_water: float = Field(0.5, gt=0.0, le=1.0)
    """After an eviction the prompt is at most this share of the budget."""
