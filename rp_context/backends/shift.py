"""Finding what the KV cache can keep when the prompt changes in the middle, not just at the end.

When history is evicted from the middle of a prompt, the cached tokens are `P + M + S` and the
new prompt is `P + S + new`. Removing `M` from the KV cache and shifting `S` back (as KoboldCpp's
context shifting does) saves re-processing `S`. More generally the new prompt may also hold new
text in the middle (a memory summary that changed, a depth injection that moved): `P + M' + S`.
Then `S` is moved to its new place and only `M'` is evaluated at its own positions, which is
what llama.cpp's server does with `n_cache_reuse` for the cut half of it. Both are approximate:
the kept entries of `S` were computed with `M` in view, not `M'`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..tokens import common_prefix

__all__ = ["MIN_CHUNK", "Chunk", "ReusePlan", "ShiftPlan", "plan_reuse", "plan_shift"]

MIN_CHUNK = 16
"""Shortest cached run worth moving: the llama backend's default and what the benches model."""


@dataclass(frozen=True, slots=True)
class ShiftPlan:
    """Cut `removed` cached tokens starting at `start`; then `kept` more cached tokens match."""

    start: int
    removed: int
    kept: int


@dataclass(frozen=True, slots=True)
class Chunk:
    """`length` cached tokens at cache position `src` that the prompt holds at position `dst`."""

    src: int
    dst: int
    length: int


@dataclass(frozen=True, slots=True)
class ReusePlan:
    """Keep the common `prefix` in place and move each chunk from `src` to `dst` (in order in
    both the cache and the prompt); every other cached token goes, and the prompt's tokens in
    the gaps between chunks are evaluated at their own positions."""

    prefix: int
    chunks: tuple[Chunk, ...] = ()

    @property
    def end(self) -> int:
        """Prompt tokens up to the end of the last chunk (evaluated after it: the rest)."""
        return self.chunks[-1].dst + self.chunks[-1].length if self.chunks else self.prefix

    @property
    def reused(self) -> int:
        """Prompt tokens whose KV entries come from the cache."""
        return self.prefix + sum(c.length for c in self.chunks)

    @property
    def gaps(self) -> list[tuple[int, int]]:
        """Prompt spans [start, stop) before `end` that are not in the cache."""
        out, at = [], self.prefix
        for c in self.chunks:
            if c.dst > at:
                out.append((at, c.dst))
            at = c.dst + c.length
        return out

    @property
    def cut(self) -> int:
        """Cached tokens removed between the prefix and the last chunk (the shift's span)."""
        if not self.chunks:
            return 0
        last = self.chunks[-1]
        return last.src + last.length - self.prefix - sum(c.length for c in self.chunks)

    def evaluated(self, prompt_len: int) -> int:
        """Prompt tokens this plan evaluates: the gaps and everything after the last chunk."""
        return prompt_len - self.reused


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


_MAX_CANDIDATES = 16
"""Cache positions tried per prompt position (repeated text has many; the longest wins)."""
_MAX_CHUNKS = 256


def _grams(a: np.ndarray, k: int) -> np.ndarray:
    """A 64-bit hash of every k-token window of `a` (wrapping arithmetic, equal windows equal)."""
    if len(a) < k:
        return np.zeros(0, dtype=np.uint64)
    weights = np.uint64(0x9E3779B97F4A7C15) ** np.arange(k, dtype=np.uint64)
    windows = np.lib.stride_tricks.sliding_window_view(a.astype(np.uint64), k)
    with np.errstate(over="ignore"):
        return (windows * weights).sum(axis=1, dtype=np.uint64)


def _match(c: np.ndarray, i: int, p: np.ndarray, j: int, stop: int) -> int:
    """Length of the common run of `c[i:]` and `p[j:stop]`, compared in growing blocks."""
    n, block = min(len(c) - i, stop - j), 64
    done = 0
    while done < n:
        m = min(block, n - done)
        diff = np.flatnonzero(c[i + done : i + done + m] != p[j + done : j + done + m])
        if len(diff):
            return done + int(diff[0])
        done += m
        block *= 4
    return n


def plan_reuse(
    cached: Sequence[int] | np.ndarray,
    prompt: Sequence[int] | np.ndarray,
    *,
    min_chunk: int = MIN_CHUNK,
    insert: bool = True,
) -> ReusePlan:
    """What of `cached` the cache can keep for `prompt`: its common prefix, then later cached
    runs of at least `min_chunk` tokens moved to where the prompt holds them.

    With `insert=False` the runs must follow each other in the prompt with nothing new between
    them (only cached spans are cut, like llama.cpp's `n_cache_reuse`); with `insert=True` new
    prompt tokens may lie between runs (the backend evaluates them at their positions). The
    prompt's last token is never reused: its logits sample the reply.
    """
    c, p = _as_array(cached), _as_array(prompt)
    stop = len(p) - 1
    start = max(0, min(common_prefix(c, p), stop))
    k = max(2, min_chunk)
    found = _runs(c, p, start, stop, k, contiguous=not insert)
    return ReusePlan(start, tuple(_chain(found) if insert else found))


def _runs(c: np.ndarray, p: np.ndarray, start: int, stop: int, k: int, *,
          contiguous: bool) -> list[Chunk]:
    """Walk the prompt from `start`: at each position, the longest cached run (>= k tokens)
    found through k-token anchors; jump past it. Contiguous: stop at the first new token."""
    hc, hp = _grams(c[start:], k), _grams(p[start:stop], k)
    if not len(hc) or not len(hp):
        return []
    order = np.argsort(hc, kind="stable")
    keys = hc[order]
    out: list[Chunk] = []
    at, floor = 0, 0  # prompt and cache positions, relative to start
    for j in np.flatnonzero(np.isin(hp, hc)).tolist():
        if j < at:
            continue
        if contiguous and j != at:
            break
        lo, hi = np.searchsorted(keys, hp[j], "left"), np.searchsorted(keys, hp[j], "right")
        cands = np.sort(order[lo:hi])
        if contiguous:
            cands = cands[cands >= floor]
        best, src = 0, -1
        for i in cands[:_MAX_CANDIDATES].tolist():
            n = _match(c, start + i, p, start + j, stop)
            if n > best:
                best, src = n, i
        if best >= k:
            out.append(Chunk(start + src, start + j, best))
            at, floor = j + best, src + best
        elif contiguous:
            break
        if len(out) >= _MAX_CHUNKS:
            break
    return out


def _chain(runs: list[Chunk]) -> list[Chunk]:
    """The heaviest subsequence of `runs` (already in prompt order) also in cache order, without
    overlaps: runs that would move across each other cannot all be kept."""
    if not runs:
        return []
    best = [r.length for r in runs]
    back = [-1] * len(runs)
    for b, rb in enumerate(runs):
        for a in range(b):
            ra = runs[a]
            if ra.src + ra.length <= rb.src and best[a] + rb.length > best[b]:
                best[b], back[b] = best[a] + rb.length, a
    at = max(range(len(runs)), key=best.__getitem__)
    out: list[Chunk] = []
    while at >= 0:
        out.append(runs[at])
        at = back[at]
    return out[::-1]
