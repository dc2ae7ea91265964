"""Short prompt deltas run with the generation thread count (the backend-cache benchmark's finding)."""

from __future__ import annotations

from rp_context.backends.llama import _SMALL_EVAL, LlamaBackend


def test_short_eval_uses_generation_threads_and_restores(smollm_path, smollm_tokenizer) -> None:
    backend = LlamaBackend(smollm_path, n_ctx=512, n_threads=1, n_threads_batch=2)
    lc, llm = backend._lc, backend.llama
    seen: list[tuple[int, int]] = []
    real_eval = llm.eval

    def eval_watch(tokens):  # records the context's thread counts at each eval, then runs it
        seen.append((len(tokens), lc.llama_n_threads_batch(llm.ctx)))
        return real_eval(tokens)

    llm.eval = eval_watch
    try:
        text = "<|im_start|>user\n" + "Tell me about the lighthouse and the sea. " * 12 + "<|im_end|>\n"
        ids = smollm_tokenizer.tokenize(text + "<|im_start|>assistant\n", special=True)
        assert len(ids) > _SMALL_EVAL
        first = backend.stream(ids, max_tokens=2, temperature=0.0).collect()
        more = smollm_tokenizer.tokenize(text + "<|im_start|>user\nAnd the lamp?<|im_end|>\n<|im_start|>assistant\n",
                                         special=True)
        second = backend.stream(more, max_tokens=2, temperature=0.0).collect()
        after = (lc.llama_n_threads(llm.ctx), lc.llama_n_threads_batch(llm.ctx))
    finally:
        llm.eval = real_eval
        backend.close()
    assert first.metrics.evaluated_tokens == len(ids)
    assert 0 < second.metrics.evaluated_tokens <= _SMALL_EVAL
    prompt_evals = [s for s in seen if s[0] > 1]
    # the long first prompt ran with the batch threads, the short delta with the generation ones
    assert prompt_evals[0] == (len(ids), 2)
    assert (second.metrics.evaluated_tokens, 1) in seen
    # and the context is back to its configured counts after the turn
    assert after == (1, 2)
