"""Running successive prompts as chat turns and collecting their metrics (the benchmark's core)."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Sequence

from pydantic import BaseModel

from ..sampling import SamplerSettings
from .base import Backend, GenerationResult, PromptInput, TurnMetrics

__all__ = ["TurnSummary", "run_turns", "summarize"]

PromptSource = PromptInput | str | Sequence[int]


def run_turns(
    backend: Backend,
    prompts: Iterable[PromptSource] | Callable[[int, list[GenerationResult]], PromptSource | None],
    *,
    sampler: SamplerSettings | None = None,
    stop: Sequence[str] = (),
) -> list[GenerationResult]:
    """Run each prompt as the next turn on `backend`; return every turn's result in order.

    `prompts` is a list, or a function `(turn_index, results_so_far) -> prompt | None` for
    chats whose next prompt includes the previous reply (None ends the run).
    """
    results: list[GenerationResult] = []
    if callable(prompts):
        make = prompts
        i = 0
        while (prompt := make(i, results)) is not None:
            results.append(backend.stream(prompt, sampler=sampler, stop=stop).collect())
            i += 1
        return results
    for prompt in prompts:
        results.append(backend.stream(prompt, sampler=sampler, stop=stop).collect())
    return results


class TurnSummary(BaseModel):
    """Medians over a run of turns, as the benchmark reports them."""

    turns: int
    median_ttft_s: float | None
    median_evaluated: float | None
    max_evaluated: int | None
    total_reused: int | None
    median_tokens_per_second: float | None


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def summarize(metrics: Sequence[TurnMetrics]) -> TurnSummary:
    """Median time to first token and evaluated tokens (and a few totals) over `metrics`."""
    ttft = [m.time_to_first_token_s for m in metrics if m.time_to_first_token_s is not None]
    ev = [m.evaluated_tokens for m in metrics if m.evaluated_tokens is not None]
    reused = [m.reused_tokens for m in metrics if m.reused_tokens is not None]
    tps = [m.tokens_per_second for m in metrics if m.tokens_per_second is not None]
    return TurnSummary(
        turns=len(metrics),
        median_ttft_s=_median(ttft),
        median_evaluated=_median([float(v) for v in ev]),
        max_evaluated=max(ev) if ev else None,
        total_reused=sum(reused) if reused else None,
        median_tokens_per_second=_median(tps),
    )
