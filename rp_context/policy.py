"""Budget policies: which reductions the budget manager may use, as a YAML preset kind."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["BudgetPolicy", "ExamplesPolicy", "EvictionMode", "DEFAULT_MEMORY_PROMPT"]

ExamplesPolicy = Literal["keep", "never", "gradual", "threshold"]
EvictionMode = Literal["chunked", "per_message", "shift"]

DEFAULT_MEMORY_PROMPT = (
    "Ignore previous instructions. Summarize the most important facts and events in the story "
    "so far. If a summary already exists in your memory, use that as a base and expand with new "
    "facts. Limit the summary to {{words}} words or less. Your response should include nothing "
    "but the summary."
)
"""SillyTavern Summarize's default prompt (`{{words}}` is filled from `memory_length`)."""


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
    eviction: EvictionMode = "chunked"
    """chunked: evict to the low-water mark in one step; per_message: SillyTavern's trimming;
    shift: evict the oldest turns one by one so the window stays full, and ask the backend to
    shift its KV cache (cut the evicted span, keep what follows) instead of re-reading it."""
    keyword_lore: Literal["story", "tail"] = "tail"
    """Keyword-activated world info: "tail" (a system turn before the newest message, so lore
    that comes and goes does not shift the whole prompt) or "story" (SillyTavern: at the top)."""
    low_water: float = Field(0.5, gt=0.0, le=1.0)
    """After an eviction the prompt is at most this share of the budget."""
    memory: bool = True
    """Keep a summary of evicted turns (written by the model, stored in the chat as SillyTavern's
    Summarize extension does) in a `memory` segment before the history; false turns it off."""
    memory_length: int = Field(200, ge=16, le=4096)
    """Most tokens the model may write for a summary (and `{{words}}` ≈ 3/4 of it)."""
    memory_share: float = Field(0.15, gt=0.0, le=0.5)
    """Most of the budget a summary may take; a longer request is capped to it."""
    memory_prompt: str = DEFAULT_MEMORY_PROMPT
    """The summary instruction, sent after the current prompt (SillyTavern's "classic" mode)."""
    memory_template: str = "[Summary: {{summary}}]"
    """How the summary is written into the prompt (SillyTavern Summarize's injection template)."""
