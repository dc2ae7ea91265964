"""The remote backend against llama.cpp's own server (the `xllamacpp` wheel) on 127.0.0.1.

The suite starts the server with the default model (`LlamaServer`) and checks what the backend
sends and reads: token ids, `cache_prompt`, a fixed `id_slot`, `n_keep`, `n_cache_reuse`,
streamed `prompt_progress`, the typed context-size error, `timings` metrics, slot files that
survive a server restart, and the slot pool with more chats than slots.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rp_context.backends.base import ContextSizeExceeded, PromptInput
from rp_context.backends.llamaserver import LlamaServer
from rp_context.backends.remote import RemoteBackend
from rp_context.backends.slots import SlotPool, slot_filename
from rp_context.errors import BackendError

pytest.importorskip("xllamacpp", reason="llama.cpp's server comes from the xllamacpp wheel (test extra)")
pytestmark = pytest.mark.model

N_CTX = 2048  # two slots of 1024 tokens


@pytest.fixture(scope="module")
def server(smollm_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    root = tmp_path_factory.mktemp("llama-server")
    srv = LlamaServer(model=smollm_path, n_ctx=N_CTX, n_parallel=2, n_threads=2,
                      slot_save_path=root / "slots", log=root / "server.log")
    with srv:
        yield srv


def chatml(turns: list[tuple[str, str]], system: str = "You are Wren, who keeps a lighthouse.") -> str:
    text = f"<|im_start|>system\n{system}<|im_end|>\n"
    for role, content in turns:
        text += f"<|im_start|>{role}\n{content}<|im_end|>\n"
    return text + "<|im_start|>assistant\n"


def ids_of(remote: RemoteBackend, text: str) -> list[int]:
    ids = remote.tokenize(text)
    assert ids
    return ids


def slot_params(server: LlamaServer, slot: int) -> dict:
    slots = httpx.get(f"{server.url}/slots", timeout=10).json()
    return next(s for s in slots if s["id"] == slot)


def test_token_ids_cache_prompt_fixed_slot_and_timings(greedy, server: LlamaServer) -> None:
    remote = RemoteBackend(server.url, slot=1)
    assert remote.kind == "llama.cpp" and remote.total_slots == 2
    first = ids_of(remote, chatml([("user", "Hello! What is this place?")]))
    sampler = greedy.model_copy(update={"max_tokens": 12})
    r1 = remote.stream(PromptInput(ids=tuple(first), n_keep=5), sampler=sampler).collect()
    m1 = r1.metrics
    assert r1.text.strip()
    assert m1.prompt_tokens == len(first) and m1.reused_tokens == 0 and m1.evaluated_tokens == len(first)
    assert m1.counts_exact and m1.generated_tokens > 0
    params = slot_params(server, 1)
    assert params["params"]["n_keep"] == 5  # the pinned prefix reached the slot
    second = ids_of(remote, chatml([("user", "Hello! What is this place?"),
                                    ("assistant", r1.text), ("user", "Can I stay the night?")]))
    r2 = remote.stream(second, sampler=sampler).collect()
    m2 = r2.metrics
    # cache_prompt on a fixed slot: the server kept the first prompt; only the rest was read.
    assert m2.reused_tokens is not None and m2.reused_tokens >= len(first) - 1
    assert m2.reused_tokens + m2.evaluated_tokens == len(second) == m2.prompt_tokens
    remote.close()


def test_cache_reuse_keeps_chunks_after_an_evicted_span(greedy, server: LlamaServer) -> None:
    base = RemoteBackend(server.url)
    p = ids_of(base, "The lighthouse keeper lives alone on the rock. " * 4)
    m = ids_of(base, " A storm came in the night and broke the lamp room windows." * 3)
    s = ids_of(base, " Tess woke up on the cold floor and saw the old cat staring at her." * 4)
    tail = ids_of(base, " Then")
    sampler = greedy.model_copy(update={"max_tokens": 2})
    got = {}
    for reuse, slot in ((None, 0), (16, 1)):
        remote = RemoteBackend(server.url, slot=slot, cache_reuse=reuse)
        remote.stream(p + m + s, sampler=sampler).collect()
        got[reuse] = remote.stream(p + s + tail, sampler=sampler).collect().metrics
    assert got[None].reused_tokens == len(p)  # the plain common prefix
    assert got[16].reused_tokens >= len(p) + len(s) - 16  # S was shifted back, not re-read
    assert got[16].evaluated_tokens < got[None].evaluated_tokens // 2


def test_prompt_progress_is_streamed(greedy, server: LlamaServer) -> None:
    remote = RemoteBackend(server.url, slot=0)
    ids = ids_of(remote, chatml([("user", "Tell me about the lamp. " * 60)]))
    seen: list[tuple[int, int]] = []
    res = remote.stream(ids, sampler=greedy.model_copy(update={"max_tokens": 2}),
                        on_progress=lambda done, total: seen.append((done, total))).collect()
    evaluated = res.metrics.evaluated_tokens
    assert evaluated and evaluated > 100
    assert seen and seen[-1] == (evaluated, evaluated)
    assert all(total == evaluated for _, total in seen)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_a_prompt_over_the_slot_context_is_a_typed_error(server: LlamaServer) -> None:
    remote = RemoteBackend(server.url, slot=0)
    ids = ids_of(remote, "word " * 1500)
    with pytest.raises(ContextSizeExceeded) as info:
        remote.stream(ids).collect()
    err = info.value
    assert isinstance(err, BackendError)
    assert err.n_ctx == N_CTX // 2 and err.n_prompt_tokens >= len(ids)
    assert str(err.n_ctx) in str(err) and str(err.n_prompt_tokens) in str(err)


def test_plain_openai_path_without_llamacpp_extras(greedy, server: LlamaServer) -> None:
    remote = RemoteBackend(server.url + "/v1", kind="openai")
    text = chatml([("user", "Say hello.")])
    body = remote._body(PromptInput(text=text, ids=(1, 2)), greedy, [])
    assert body["prompt"] == text  # text, not ids
    assert not {"cache_prompt", "id_slot", "n_keep", "return_progress", "n_cache_reuse"} & set(body)
    res = remote.stream(text, sampler=greedy.model_copy(update={"max_tokens": 8})).collect()
    assert res.text.strip() and res.metrics.stop_reason == "max_tokens"


def test_ids_go_only_to_a_server_whose_tokenizer_agrees(
    greedy, server: LlamaServer, smollm_tokenizer, gemma_tokenizer
) -> None:
    text = chatml([("user", "Say hello.")])
    same = RemoteBackend(server.url, slot=0)
    assert same.speaks_ids_of(smollm_tokenizer)
    ids = tuple(smollm_tokenizer.tokenize(text, special=True))
    assert same._body(PromptInput(ids=ids, text=text), greedy, [])["prompt"] == list(ids)
    other = RemoteBackend(server.url, slot=0)
    assert not other.speaks_ids_of(gemma_tokenizer)  # the server runs SmolLM2
    foreign = tuple(gemma_tokenizer.tokenize(text, special=True))
    assert other._body(PromptInput(ids=foreign, text=text), greedy, [])["prompt"] == text
    res = other.stream(PromptInput(ids=foreign, text=text),
                       sampler=greedy.model_copy(update={"max_tokens": 4})).collect()
    assert res.metrics.prompt_tokens == len(ids)  # the server read the text with its own tokenizer


def test_chat_slot_survives_a_server_restart(greedy, smollm_path: Path, tmp_path: Path) -> None:
    slots = tmp_path / "slots"
    sampler = greedy.model_copy(update={"max_tokens": 8})
    with LlamaServer(model=smollm_path, n_ctx=1024, n_threads=2, slot_save_path=slots,
                     log=tmp_path / "server.log") as srv:
        remote = RemoteBackend(srv.url, chat="wren-chat")
        first = ids_of(remote, chatml([("user", "Hello! What is this place?")]))
        r1 = remote.stream(first, sampler=sampler).collect()
        saved = remote.save_chat_state()
        assert saved >= len(first)
        assert (slots / slot_filename("wren-chat")).is_file()
        srv.restart()  # the slot's cache is gone; its file stays
        second = ids_of(remote, chatml([("user", "Hello! What is this place?"),
                                        ("assistant", r1.text), ("user", "And you are?")]))
        cold = RemoteBackend(srv.url, slot=0)
        again = RemoteBackend(srv.url, chat="wren-chat")
        # A new process: the pool is per process, so start from a fresh one.
        again._pool = SlotPool(again, again.total_slots)
        assert again.restore_chat_state() == saved
        m = again.stream(second, sampler=sampler).collect().metrics
        assert m.reused_tokens is not None and m.reused_tokens >= len(first) - 1
        assert m.evaluated_tokens == len(second) - m.reused_tokens
        cold.close()


def test_slot_pool_affinity_eviction_and_parallel_requests(greedy, server: LlamaServer) -> None:
    shared = RemoteBackend(server.url)
    pool = SlotPool(shared, shared.total_slots)
    sampler = greedy.model_copy(update={"max_tokens": 6})
    chats = {name: shared.for_chat(name) for name in ("ada", "bo", "cy")}
    for b in chats.values():
        b._pool = pool
    prompts = {name: ids_of(shared, chatml([("user", f"My name is {name}. Hello!")])) for name in chats}
    first = {n: chats[n].stream(prompts[n], sampler=sampler).collect() for n in ("ada", "bo")}
    assert {pool.slot_of("ada"), pool.slot_of("bo")} == {0, 1}
    # Affinity: ada again reuses her own slot's cache.
    again = chats["ada"].stream(prompts["ada"], sampler=sampler).collect()
    assert again.metrics.reused_tokens == len(prompts["ada"]) - 1
    # A third chat takes the least recently used slot (bo's), which is saved first.
    chats["cy"].stream(prompts["cy"], sampler=sampler).collect()
    assert pool.slot_of("bo") is None and pool.saves >= 1
    # bo comes back: restored from the server's disk into the slot cy or ada leaves.
    back = chats["bo"].stream(prompts["bo"], sampler=sampler).collect()
    assert back.metrics.restored_tokens >= len(prompts["bo"])
    assert back.metrics.reused_tokens == len(prompts["bo"]) - 1
    assert first["bo"].text == back.text

    # Two chats at once run on two slots at the same time.
    long = greedy.model_copy(update={"max_tokens": 48})
    story = {n: ids_of(shared, chatml([("user", f"{n}: tell me a long story about the sea.")]))
             for n in ("ada", "bo")}
    a = chats["ada"].stream(story["ada"], sampler=long)
    pieces_a = [next(a)]
    overlap: list[bool] = []

    def other() -> None:
        b = chats["bo"].stream(story["bo"], sampler=long)
        next(b)
        overlap.append(not a_done.is_set())
        b.close()

    a_done = threading.Event()
    t = threading.Thread(target=other)
    t.start()
    t.join(timeout=120)
    pieces_a += list(a)
    a_done.set()
    assert overlap == [True] and len(pieces_a) > 1
    assert {pool.slot_of("ada"), pool.slot_of("bo")} == {0, 1}
    shared.close()
