"""Sampler settings shared by every backend and by sampler presets (`presets/sampler/*.yaml`).

The fields are llama.cpp's sampling parameters with llama.cpp's meanings (the names its server
takes), so one preset drives the in-process chain and a server alike. `sampler_order` is
llama.cpp's `samplers` list; names it does not know are refused, except the two SillyTavern
sends that llama.cpp ignores (`tfs_z`, `typical_p`), which are kept and skipped.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "SamplerSettings",
    "LogitBias",
    "SAMPLER_NAMES",
    "DEFAULT_SAMPLER_ORDER",
    "canonical_sampler",
    "parse_token_list",
]

SAMPLER_NAMES: dict[str, str] = {
    "penalties": "penalties",
    "dry": "dry",
    "top_n_sigma": "top_n_sigma",
    "top-n-sigma": "top_n_sigma",
    "topnsigma": "top_n_sigma",
    "top_k": "top_k",
    "top-k": "top_k",
    "topk": "top_k",
    "typ_p": "typ_p",
    "typ-p": "typ_p",
    "typp": "typ_p",
    "typ": "typ_p",
    "top_p": "top_p",
    "top-p": "top_p",
    "topp": "top_p",
    "nucleus": "top_p",
    "min_p": "min_p",
    "min-p": "min_p",
    "minp": "min_p",
    "xtc": "xtc",
    "temperature": "temperature",
    "temp": "temperature",
}
"""Sampler names llama.cpp accepts in `samplers` (canonical, kebab-case, no-dash, aliases)."""

_IGNORED_NAMES = {"tfs_z", "typical_p"}
"""Names SillyTavern puts in its llama.cpp order that llama.cpp does not match (it skips them)."""

DEFAULT_SAMPLER_ORDER: tuple[str, ...] = (
    "penalties",
    "dry",
    "top_n_sigma",
    "top_k",
    "typ_p",
    "top_p",
    "min_p",
    "xtc",
    "temperature",
)
"""llama.cpp's default order (common/common.h)."""


def canonical_sampler(name: str) -> str | None:
    """llama.cpp's canonical name for a sampler name or alias; None for one llama.cpp skips."""
    return SAMPLER_NAMES.get(name.lower())


def parse_token_list(text: str) -> list[int] | None:
    """`[1, 2]` as token ids (SillyTavern's raw-id form), else None."""
    t = text.strip()
    if not (t.startswith("[") and t.endswith("]")):
        return None
    try:
        ids = json.loads(t)
    except ValueError:
        return None
    if isinstance(ids, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        return ids
    return None


class LogitBias(BaseModel):
    """One logit-bias entry, as SillyTavern writes it: `text` is `[ids]` (token ids),
    `{text}` (verbatim text) or plain text (tokenized with a leading space); every token of
    it gets `value` added to its logit (-100 or less bans it)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    text: str
    """Token ids `[1, 2]`, verbatim `{text}`, or a word (a leading space is added)."""
    value: float
    """Added to each token's logit; -100 or less bans the tokens."""
    id: str | None = None
    """SillyTavern's row id, kept for export."""


class SamplerSettings(BaseModel):
    """How tokens are sampled; unknown keys are refused so typos in presets fail loudly."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    temperature: float = Field(0.8, ge=0.0, le=5.0)
    """Randomness; 0 picks the most likely token every time."""
    dynatemp_range: float = Field(0.0, ge=0.0, le=5.0)
    """Dynamic temperature: the temperature moves within temperature ± this with the entropy
    (0: off)."""
    dynatemp_exponent: float = Field(1.0, ge=0.0, le=10.0)
    """Dynamic temperature: how entropy maps to temperature."""
    top_p: float = Field(0.95, ge=0.0, le=1.0)
    """Nucleus sampling: keep the smallest set of tokens whose probabilities sum to this."""
    min_p: float = Field(0.05, ge=0.0, le=1.0)
    """Drop tokens less likely than this fraction of the most likely one."""
    top_k: int = Field(40, ge=0)
    """Keep only the k most likely tokens (0: no limit)."""
    typical_p: float = Field(1.0, ge=0.0, le=1.0)
    """Locally typical sampling (1: off)."""
    top_n_sigma: float = Field(-1.0, ge=-1.0, le=100.0)
    """Keep tokens within n standard deviations of the top logit (0 or less: off)."""
    min_keep: int = Field(0, ge=0)
    """Truncating samplers keep at least this many tokens (0: their own minimum)."""
    repeat_penalty: float = Field(1.1, gt=0.0, le=5.0)
    """Penalty for repeating recent tokens (1.0: none)."""
    repeat_last_n: int = Field(64, ge=-1)
    """How many recent tokens the repetition, presence and frequency penalties look at
    (0: off, -1: the whole context)."""
    frequency_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    """Subtracted per earlier occurrence of a token (0: off)."""
    presence_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    """Subtracted once from any token already present (0: off)."""
    dry_multiplier: float = Field(0.0, ge=0.0, le=10.0)
    """DRY ("don't repeat yourself"): penalty strength for extending a repeated sequence
    (0: off; 0.8 is the usual value)."""
    dry_base: float = Field(1.75, ge=1.0, le=10.0)
    """DRY: the penalty grows as base ** (repeat length - allowed length)."""
    dry_allowed_length: int = Field(2, ge=0)
    """DRY: repeats up to this many tokens are free."""
    dry_penalty_last_n: int = Field(-1, ge=-1)
    """DRY: how many recent tokens to scan (-1: the whole context, 0: off)."""
    dry_sequence_breakers: list[str] = Field(default_factory=lambda: ["\n", ":", '"', "*"])
    """DRY: strings that end a repeated sequence (a new line, a name's colon, quotes...)."""
    xtc_probability: float = Field(0.0, ge=0.0, le=1.0)
    """XTC ("exclude top choices"): chance per token of removing the likeliest tokens (0: off)."""
    xtc_threshold: float = Field(0.1, ge=0.0, le=1.0)
    """XTC: tokens above this probability are removed, all but the least likely of them
    (above 0.5: off)."""
    mirostat: Literal[0, 1, 2] = 0
    """Mirostat (1 or 2) replaces the truncating samplers with a target surprise (0: off)."""
    mirostat_tau: float = Field(5.0, ge=0.0, le=20.0)
    """Mirostat: target entropy."""
    mirostat_eta: float = Field(0.1, ge=0.0, le=1.0)
    """Mirostat: learning rate."""
    logit_bias: list[LogitBias] = Field(default_factory=list)
    """Per-token logit changes (SillyTavern's logit-bias list)."""
    banned_tokens: list[str] = Field(default_factory=list)
    """Tokens never sampled: `[ids]`, or text whose every token is banned (SillyTavern's rule)."""
    banned_strings: list[str] = Field(default_factory=list)
    """Phrases that never appear in a reply, even across tokens: when one completes, generation
    backs up to where it began and samples again without it (case-insensitive)."""
    sampler_order: list[str] = Field(default_factory=lambda: list(DEFAULT_SAMPLER_ORDER))
    """llama.cpp's sampler chain order (its `samplers` names or aliases)."""
    max_tokens: int = Field(300, ge=1)
    """Longest reply in tokens."""
    seed: int | None = None
    """Sampling seed for repeatable replies; None draws a new one each turn."""
    sillytavern_extra: dict[str, Any] = Field(default_factory=dict)
    """SillyTavern keys kept from an import for a lossless export; not used for sampling."""

    @field_validator("sampler_order")
    @classmethod
    def _known_samplers(cls, names: list[str]) -> list[str]:
        for name in names:
            if canonical_sampler(name) is None and name.lower() not in _IGNORED_NAMES:
                known = ", ".join(DEFAULT_SAMPLER_ORDER)
                raise ValueError(f"unknown sampler {name!r} (llama.cpp's are {known})")
        return names

    @field_validator("banned_strings", "dry_sequence_breakers")
    @classmethod
    def _no_empty(cls, items: list[str]) -> list[str]:
        if any(not s for s in items):
            raise ValueError("empty strings are not allowed here")
        return items

    def chain_order(self) -> list[str]:
        """The sampler order as llama.cpp applies it: canonical names, skipped names left out."""
        out = []
        for name in self.sampler_order:
            canon = canonical_sampler(name)
            if canon is not None:
                out.append(canon)
        return out

