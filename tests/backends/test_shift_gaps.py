"""New text in the middle of a shifted prompt (a changed memory) with the real model: evaluated in
place in steps, cancellable between them, and the cache stays consistent either way."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from rp_context.backends.llama import LlamaBackend
from rp_context.backends.shift import ReusePlan, plan_reuse
from rp_context.sampling import SamplerSettings

pytestmark = pytest.mark.model

BATCH = 16
LONG_MEMORY = ("Tess washed up on the rock in a storm. Wren, the keeper, pulled her from the surf, "
               "gave her dry clothes and a blanket by the stove, and told her the supply boat comes "
               "only on Thursdays, so she will have to stay the week at the light.")


@pytest.fixture(scope="module")
def small_batches(smollm_path: Path) -> Iterator[LlamaBackend]:
    """Batches of 16 tokens, so a memory of ~60 new tokens takes several steps."""
    b = LlamaBackend(smollm_path, n_ctx=1024, n_batch=BATCH, n_threads=2, context_shift=True)
    yield b
    b.close()


def _primed(backend: LlamaBackend, greedy, chat_ids, history) -> tuple[SamplerSettings, list[int], ReusePlan]:
    """A reply to a prompt with a short summary cached; the next prompt, whose longer summary
    covers the evicted first exchange, and the backend's plan for it."""
    sampler = greedy.model_copy(update={"max_tokens": 6})
    first = chat_ids("What is the lamp made of?", [("system", "[Summary: Tess arrived.]"), *history])
    later = chat_ids("What is the lamp made of?", [("system", f"[Summary: {LONG_MEMORY}]"), *history[2:]])
    backend.reset()
    backend.stream(first, sampler=sampler).collect()
    return sampler, later, plan_reuse(backend.cached_ids, later, min_chunk=backend.shift_min_kept)


def test_cancel_inside_the_new_memory_keeps_only_what_precedes_it(greedy, small_batches: LlamaBackend,
                                                                   chat_ids, history) -> None:
    backend = small_batches
    sampler, later, plan = _primed(backend, greedy, chat_ids, history)
    (gap_start, gap_end), = plan.gaps
    assert gap_end - gap_start > 2 * BATCH  # the new memory takes several steps
    cancel = threading.Event()
    seen: list[int] = []

    def progress(done: int, total: int) -> None:
        seen.append(done)
        if done >= BATCH:
            cancel.set()  # after the first step of the new memory

    res = backend.stream(later, sampler=sampler, cancel=cancel, on_progress=progress).collect()
    assert res.metrics.stop_reason == "cancelled" and res.token_ids == []
    assert seen[0] == BATCH and max(seen) < gap_end - gap_start
    assert backend.cached_ids == later[:gap_start]  # nothing after the cut point is left half-moved

    # The next try evaluates from there and answers as a fresh evaluation does.
    again = backend.stream(later, sampler=sampler).collect()
    assert again.metrics.reused_tokens == gap_start
    backend.reset()
    fresh = backend.stream(later, sampler=sampler, context_shift=False).collect()
    assert again.token_ids[:3] == fresh.token_ids[:3]


def test_new_memory_in_steps_reports_progress_and_a_sane_reply(greedy, small_batches: LlamaBackend,
                                                                chat_ids, history) -> None:
    """Measured: the reply's first token is a fresh run's; later ones may differ (the moved
    history was computed after the old memory: `bench_shift_fidelity.py` shows how often)."""
    backend = small_batches
    sampler, later, plan = _primed(backend, greedy, chat_ids, history)
    seen: list[tuple[int, int]] = []
    res = backend.stream(later, sampler=sampler, on_progress=lambda d, t: seen.append((d, t))).collect()
    m = res.metrics
    assert m.reused_tokens == plan.reused and m.evaluated_tokens == len(later) - plan.reused
    assert seen[-1] == (m.evaluated_tokens, m.evaluated_tokens)  # one count across gap and tail
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert backend.cached_ids[: len(later)] == later
    assert res.text.strip() and "\ufffd" not in res.text
    shifted = res.token_ids
    backend.reset()
    assert backend.stream(later, sampler=sampler, context_shift=False).collect().token_ids[:1] == shifted[:1]
