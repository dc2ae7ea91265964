"""Finding what a context shift can save: the new prompt is the cached one with a middle span cut.

When history is evicted from the middle of a prompt, the cached tokens are `P + M + S` and the
new prompt is `P + S + new`. Removing `M` from the KV cache and shifting `S` back (as KoboldCpp's
context shifting does) saves re-processing `S`. The result is approximate: the kept entries
of `S` were computed with `M` in view.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..tokens import common_prefix

__all__ = ["ShiftPlan", "plan_shift"]


@dataclass(frozen=True, slots=True)
class ShiftPlan:
    """Cut `removed` cached tokens starting at `start`; then `kept` more cached tokens match."""

    start: int
    removed: int
    kept: int


def _as_array(ids: Sequence[int] | np.ndarray) -> np.ndarray:
    return np.asarray(ids, dtype=np.int64)


def plan_shift(
    cached: Sequence[int] | np.ndarray,
    prompt: Sequence[int] | np.ndarray,
    *,
    min_kept: int = 16,
) -> ShiftPlan | None:
    """The cut of one span from `cached` that lets the most of `prompt` be reused, if any.

    Returns None unless cutting saves at least `min_kept` tokens of re-processing beyond the
    plain common prefix. Among equally good cuts the shortest is taken.
    """
    c, p = _as_array(cached), _as_array(prompt)
    start = common_prefix(c, p)
    if start >= len(c) - 1 or start >= len(p):
        return None
    rest_c, rest_p = c[start:], p[start:]
    # Candidate cuts: every later cached position holding the prompt's next token.
    candidates = np.nonzero(rest_c[1:] == rest_p[0])[0] + 1
    best: ShiftPlan | None = None
    for d in candidates.tolist():
        if best is not None and len(rest_c) - d <= best.kept:
            break  # later cuts leave fewer cached tokens than the best match already found
        kept = common_prefix(rest_c[d:], rest_p)
        if kept >= min_kept and (best is None or kept > best.kept):
            best = ShiftPlan(start=start, removed=int(d), kept=kept)
    return best
