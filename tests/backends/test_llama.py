"""The in-process llama.cpp backend with the real default model: streaming, stops, cancel, cache, shift, state."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from rp_context.backends.llama import LlamaBackend
from rp_context.errors import BackendError
from rp_context.tokens import common_prefix

pytestmark = pytest.mark.model


def test_streams_pieces_and_reports_metrics(greedy, backend: LlamaBackend, chat_ids) -> None:
    backend.reset()
    ids = chat_ids("Hello! What is this place?")
    stream = backend.stream(ids, sampler=greedy.model_copy(update={"max_tokens": 24}))
    pieces = list(stream)
    res = stream.result
    assert len(pieces) > 3
    assert res.text == "".join(pieces) and res.text.strip()
    m = res.metrics
    assert (m.prompt_tokens, m.reused_tokens, m.evaluated_tokens) == (len(ids), 0, len(ids))
    assert m.generated_tokens == len(res.token_ids) and 0 < m.generated_tokens <= 24
    assert m.time_to_first_token_s is not None and m.time_to_first_token_s >= (m.prompt_eval_s or 0)
    assert m.tokens_per_second is not None and m.tokens_per_second > 0
    assert "<|im_end|>" not in res.text and "<|im_start|>" not in res.text
    # The cache now holds the prompt and every generated token but the last.
    assert backend.cached_ids == ids + res.token_ids[:-1]


def test_stops_on_the_models_end_of_turn(greedy, backend: LlamaBackend, chat_ids) -> None:
    ids = backend.llama.tokenize(
        b"<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        b"<|im_start|>user\nSay hi.<|im_end|>\n<|im_start|>assistant\n",
        add_bos=False,
        special=True,
    )
    res = backend.stream(ids, sampler=greedy.model_copy(update={"max_tokens": 80})).collect()
    assert res.metrics.stop_reason == "eog"
    tokenizer_eog = res.token_ids[-1]
    assert "<|im_end|>" not in res.text
    assert backend.llama.detokenize([tokenizer_eog], special=True) in (b"<|im_end|>", b"<|endoftext|>")


def test_second_turn_reuses_the_cache(greedy, backend: LlamaBackend, chat_ids) -> None:
    backend.reset()
    first = chat_ids("Hello! What is this place?")
    r1 = backend.stream(first, sampler=greedy).collect()
    cached = backend.cached_ids
    second = chat_ids("Can I stay the night?", [("user", "Hello! What is this place?"), ("assistant", r1.text)])
    r2 = backend.stream(second, sampler=greedy).collect()
    m = r2.metrics
    assert m.reused_tokens == min(common_prefix(cached, second), len(second) - 1)
    assert m.reused_tokens >= len(first) - 1
    assert m.evaluated_tokens == len(second) - m.reused_tokens
    assert m.evaluated_tokens < len(second) // 2


def test_cancel_mid_reply_leaves_the_backend_consistent(greedy, backend: LlamaBackend, chat_ids) -> None:
    ids = chat_ids("Tell me a long story about the lighthouse.")
    backend.reset()
    backend.stream(ids, sampler=greedy.model_copy(update={"max_tokens": 16})).collect()
    # The reference runs with the prompt cached, as the runs below do (a one-token batch can
    # round differently from a full pre-fill, so compare like with like).
    reference = backend.stream(ids, sampler=greedy.model_copy(update={"max_tokens": 16})).collect()
    assert reference.metrics.reused_tokens == len(ids) - 1

    stop = threading.Event()
    stream = backend.stream(ids, sampler=greedy.model_copy(update={"max_tokens": 16}), cancel=stop)
    shown = []
    for piece in stream:
        shown.append(piece)
        if len(shown) == 3:
            stop.set()  # as another thread (the app's Esc) would
    res = stream.result
    assert res.metrics.stop_reason == "cancelled"
    assert res.metrics.generated_tokens == 3 and len(shown) == 3
    assert reference.text.startswith(res.text)

    closed = backend.stream(ids, sampler=greedy.model_copy(update={"max_tokens": 16}))
    next(closed)
    closed.close()
    assert closed.result.metrics.stop_reason == "cancelled"

    # Usable again at once, with a consistent cache: the same greedy reply as before.
    again = backend.stream(ids, sampler=greedy.model_copy(update={"max_tokens": 16})).collect()
    assert again.metrics.reused_tokens == len(ids) - 1
    assert again.text == reference.text


def test_stop_string_split_across_tokens_is_never_shown(greedy, backend: LlamaBackend, chat_ids) -> None:
    ids = chat_ids("Describe the lamp room.")
    sampler = greedy.model_copy(update={"max_tokens": 24})
    ref = backend.stream(ids, sampler=sampler).collect()
    pieces = [backend.llama.detokenize([t], special=True).decode("utf-8", "replace") for t in ref.token_ids]
    # A stop string made of the end of one token and the start of the next.
    k = next(i for i in range(2, len(pieces) - 1) if len(pieces[i].strip()) >= 2 and len(pieces[i + 1].strip()) >= 2)
    stop = pieces[k][-2:] + pieces[k + 1][:2]
    cut = ref.text.find(stop)
    assert cut >= 0

    stream = backend.stream(ids, sampler=sampler, stop=[stop])
    shown = ""
    for piece in stream:
        shown += piece
        assert stop[:2] not in shown[cut:]  # the stop string's start never appears, not even briefly
    assert shown == ref.text[:cut]
    assert stream.result.metrics.stop_reason == "stop_string"


def test_context_shift_keeps_the_tail_after_an_evicted_span(greedy, backend: LlamaBackend, chat_ids) -> None:
    history = [
        ("user", "Hello! What is this place?"),
        ("assistant", "The Skerry Light. You washed up on my rock in the storm."),
        ("user", "Who are you?"),
        ("assistant", "Wren Halloway, keeper of the light. Nine years alone out here."),
        ("user", "Do you have any tea?"),
        ("assistant", "Kettle's on the stove. Mind the cat, he bites strangers."),
    ]
    sampler = greedy.model_copy(update={"max_tokens": 12})
    backend.reset()
    backend.stream(chat_ids("What is the lamp made of?", history), sampler=sampler).collect()
    # Evict the first exchange from the middle (after the card and greeting).
    shorter = chat_ids("What is the lamp made of?", history[2:])
    cached = backend.cached_ids
    res = backend.stream(shorter, sampler=sampler, context_shift=True).collect()
    m = res.metrics
    removed = len(cached) - len(shorter) + 0  # not exact: the cache also held the old reply
    assert m.shifted_tokens > 0 and m.shifted_tokens <= removed + len(res.token_ids) + 64
    plain_prefix = common_prefix(cached, shorter)
    # Without the shift everything after the evicted span would be re-evaluated.
    assert m.evaluated_tokens < (len(shorter) - plain_prefix) // 3
    assert backend.cached_ids[: len(shorter)] == shorter
    # Coherent: the continuation is real text and starts like a full re-evaluation's.
    assert res.text.strip() and "\ufffd" not in res.text
    backend.reset()
    full = backend.stream(shorter, sampler=sampler).collect()
    assert full.metrics.evaluated_tokens == len(shorter)
    assert res.token_ids[:3] == full.token_ids[:3]


def test_a_changed_memory_keeps_the_cached_history_after_it(greedy, backend: LlamaBackend, chat_ids,
                                                             history) -> None:
    """The memory before the history changes as turns are evicted: the backend evaluates the new
    summary in place and keeps the history after it (moved), and the reply is the fresh one's."""
    sampler = greedy.model_copy(update={"max_tokens": 8})

    def prompt(message: str, turns: list[tuple[str, str]], memory: str) -> list[int]:
        return chat_ids(message, [("system", f"[Summary: {memory}]"), *turns])

    backend.reset()
    backend.stream(prompt("What is the lamp made of?", history, "Tess arrived in a storm."),
                   sampler=sampler).collect()
    cached = backend.cached_ids
    # The first exchange is evicted and the summary grows to cover it.
    memory = "Tess arrived in a storm; Wren, the keeper, pulled her from the surf."
    later = prompt("What is the lamp made of?", history[2:], memory)
    kept = len(chat_ids("", history[2:])) - len(chat_ids("", []))  # the history that stays
    res = backend.stream(later, sampler=sampler, context_shift=True).collect()
    m = res.metrics
    plain = common_prefix(cached, later)
    assert m.shifted_tokens > 0  # the evicted exchange and the old summary were cut
    assert m.reused_tokens >= plain + kept - 8  # the history after the new summary stayed cached
    assert m.evaluated_tokens == len(later) - m.reused_tokens
    assert m.evaluated_tokens < len(later) - plain - kept // 2
    assert backend.cached_ids[: len(later)] == later
    assert res.text.strip() and "\ufffd" not in res.text
    backend.reset()
    full = backend.stream(later, sampler=sampler).collect()
    assert full.metrics.evaluated_tokens == len(later)
    assert res.token_ids[:3] == full.token_ids[:3]


def test_kv_state_saved_and_restored_in_a_new_instance(greedy, 
    backend: LlamaBackend, chat_ids, smollm_path: Path, tmp_path: Path
) -> None:
    ids = chat_ids("Hello! What is this place?")
    sampler = greedy.model_copy(update={"max_tokens": 10})
    backend.reset()
    backend.stream(ids, sampler=sampler).collect()
    state = tmp_path / "chat.kvstate"
    backend.save_state(state)
    saved = backend.cached_ids
    ref = backend.stream(ids, sampler=sampler).collect()  # with the prompt cached, like the restored run

    other = LlamaBackend(smollm_path, n_ctx=2048, n_threads=2)
    try:
        assert other.load_state(state, ids) == len(saved)
        res = other.stream(ids, sampler=sampler).collect()
        assert res.metrics.reused_tokens == len(ids) - 1 and res.metrics.evaluated_tokens == 1
        assert res.text == ref.text

        # Mismatches fall back silently to a normal run.
        bad = tmp_path / "bad.kvstate"
        bad.write_bytes(state.read_bytes()[:40])
        assert other.load_state(bad) == 0
        assert other.load_state(tmp_path / "missing.kvstate") == 0
        assert other.load_state(state, [9999, 1, 2]) == 0
    finally:
        other.close()
    q8 = LlamaBackend(smollm_path, n_ctx=2048, n_threads=2, kv_cache_type="q8_0", flash_attn=True)
    try:
        assert q8.load_state(state, ids) == 0  # another KV cache type
        res = q8.stream(ids, sampler=sampler).collect()
        assert res.metrics.reused_tokens == 0 and res.metrics.evaluated_tokens == len(ids)
    finally:
        q8.close()


def test_prompt_too_long_or_empty_is_refused(backend: LlamaBackend) -> None:
    with pytest.raises(BackendError, match="does not fit"):
        backend.stream([1] * 3000)
    with pytest.raises(BackendError, match="empty"):
        backend.stream([])


def test_ids_are_fed_as_given_and_a_doubled_bos_is_collapsed(greedy, gemma_path: Path, gemma_tokenizer) -> None:
    bos = gemma_tokenizer.bos_id
    assert bos is not None and gemma_tokenizer.add_bos
    body = gemma_tokenizer.tokenize("The keeper climbed the stairs and")
    gemma = LlamaBackend(gemma_path, n_ctx=256, n_threads=2)
    try:
        once = gemma.stream([bos, *body], sampler=greedy.model_copy(update={"max_tokens": 4})).collect()
        assert once.metrics.prompt_tokens == len(body) + 1
        assert gemma.cached_ids[: len(body) + 1] == [bos, *body]  # nothing added, nothing re-tokenized
        twice = gemma.stream([bos, bos, *body], sampler=greedy.model_copy(update={"max_tokens": 4})).collect()
        assert twice.metrics.prompt_tokens == len(body) + 1
        assert twice.text == once.text
    finally:
        gemma.close()
