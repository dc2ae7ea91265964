"""Esc while llama.cpp is still reading the prompt: it stops between batches, and what it read
stays in the cache for the next turn."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from rp_context.backends.llama import LlamaBackend
from rp_context.sampling import SamplerSettings
from rp_context.synth import synthetic_chat
from rp_context.tokens import LlamaTokenizer


def test_cancel_during_prompt_processing(smollm_path: Path, smollm_tokenizer: LlamaTokenizer) -> None:
    chat = synthetic_chat(60, seed=2)
    text = "".join(f"<|im_start|>{m.role}\n{m.text}<|im_end|>\n" for m in chat.messages)
    ids = smollm_tokenizer.tokenize(text + "<|im_start|>assistant\n", special=True)[:1500]
    backend = LlamaBackend(smollm_path, n_ctx=2048, n_batch=32, n_threads=2)
    try:
        cancel = threading.Event()
        stream = backend.stream(ids, sampler=SamplerSettings(max_tokens=8, seed=1), cancel=cancel)
        timer = threading.Timer(0.3, cancel.set)
        timer.start()
        t0 = time.perf_counter()
        pieces = list(stream)
        elapsed = time.perf_counter() - t0
        m = stream.result.metrics
        assert pieces == [] and m.stop_reason == "cancelled"
        assert 0 < m.evaluated_tokens < len(ids)
        assert m.evaluated_tokens % 32 == 0  # whole batches only
        full = len(ids) / max(m.evaluated_tokens / max(elapsed, 1e-3), 1)
        assert elapsed < full  # stopped early, not after reading everything
        read = m.evaluated_tokens
        # the next turn reuses what was read
        again = backend.stream(ids, sampler=SamplerSettings(max_tokens=4, seed=1))
        list(again)
        m2 = again.result.metrics
        assert m2.reused_tokens == read and m2.evaluated_tokens == len(ids) - read
    finally:
        backend.close()
