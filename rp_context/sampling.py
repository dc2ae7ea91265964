"""Sampler settings shared by every backend and by sampler presets (`presets/sampler/*.yaml`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["SamplerSettings"]


class SamplerSettings(BaseModel):
    """How tokens are sampled; unknown keys are refused so typos in presets fail loudly."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    temperature: float = Field(0.8, ge=0.0, le=5.0)
    """Randomness; 0 picks the most likely token every time."""
    top_p: float = Field(0.95, ge=0.0, le=1.0)
    """Nucleus sampling: keep the smallest set of tokens whose probabilities sum to this."""
    min_p: float = Field(0.05, ge=0.0, le=1.0)
    """Drop tokens less likely than this fraction of the most likely one."""
    top_k: int = Field(40, ge=0)
    """Keep only the k most likely tokens (0: no limit)."""
    repeat_penalty: float = Field(1.1, ge=0.0, le=5.0)
    """Penalty for repeating recent tokens (1.0: none)."""
    max_tokens: int = Field(300, ge=1)
    """Longest reply in tokens."""
    seed: int | None = None
    """Sampling seed for repeatable replies; None draws a new one each turn."""
