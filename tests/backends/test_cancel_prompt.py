"""Esc while llama.cpp is still reading the prompt: it stops between batches, and what it read
stays in the cache for the next turn.

The cancel fires once llama.cpp has read a set number of tokens (counted as it evaluates), not
after a time, so the test means the same on a slow CPU and a fast GPU.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from rp_context.backends.llama import LlamaBackend
from rp_context.sampling import SamplerSettings
from rp_context.synth import synthetic_chat
from rp_context.tokens import LlamaTokenizer

BATCH = 32
CANCEL_AFTER = 4 * BATCH
GREEDY = SamplerSettings(temperature=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0,
                         max_tokens=4, seed=1)


def test_cancel_during_prompt_processing(
    smollm_path: Path, smollm_tokenizer: LlamaTokenizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    chat = synthetic_chat(60, seed=2)
    text = "".join(f"<|im_start|>{m.role}\n{m.text}<|im_end|>\n" for m in chat.messages)
    ids = smollm_tokenizer.tokenize(text + "<|im_start|>assistant\n", special=True)[:12 * BATCH]
    backend = LlamaBackend(smollm_path, n_ctx=1024, n_batch=BATCH, n_threads=1, n_threads_batch=1)
    try:
        cancel = threading.Event()
        batches: list[int] = []
        llm = backend._llm  # llama_cpp.Llama: watch how much of the prompt it has read
        real_eval = llm.eval

        def eval_then_cancel(tokens: list[int]) -> None:
            real_eval(tokens)
            batches.append(len(tokens))
            if sum(batches) >= CANCEL_AFTER:
                cancel.set()  # what Esc does, from the app's thread

        monkeypatch.setattr(llm, "eval", eval_then_cancel)
        stream = backend.stream(ids, sampler=GREEDY, cancel=cancel)
        pieces = list(stream)
        monkeypatch.undo()
        m = stream.result.metrics
        assert pieces == [] and m.stop_reason == "cancelled"
        # stopped at the next batch boundary, with most of the prompt unread
        assert batches == [BATCH] * (CANCEL_AFTER // BATCH)
        assert m.evaluated_tokens == CANCEL_AFTER < len(ids)

        # the next turn reuses what was read and reads only the rest
        again = backend.stream(ids, sampler=GREEDY)
        resumed = "".join(again)
        m2 = again.result.metrics
        assert m2.reused_tokens == CANCEL_AFTER
        assert m2.evaluated_tokens == len(ids) - CANCEL_AFTER
        assert m2.stop_reason != "cancelled" and m2.generated_tokens > 0

        # and the cache it resumed from was sound: the same reply as reading it all at once
        backend.reset()
        cold = backend.stream(ids, sampler=GREEDY)
        assert "".join(cold) == resumed
        assert cold.result.metrics.reused_tokens == 0
    finally:
        backend.close()
