"""The remote backend against a real `python -m llama_cpp.server` on 127.0.0.1 with the default model."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rp_context.backends.base import PromptInput
from rp_context.backends.llamaserver import free_port
from rp_context.backends.remote import RemoteBackend
from rp_context.errors import BackendError
from rp_context.quickstart import chatml_parts, read_simple_card
from rp_context.tokens import join_parts

pytestmark = pytest.mark.model


# llama-cpp-python's server, with the llama.cpp guards rp-context applies in process (no AMX
# weight buffers where the CPU reports AMX: a -march=native build dies with SIGILL in this VM).
_SERVER_MAIN = (
    "import runpy; from rp_context._llama import import_llama_cpp; import_llama_cpp(); "
    "runpy.run_module('llama_cpp.server', run_name='__main__', alter_sys=True)"
)


@pytest.fixture(scope="module")
def server(smollm_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A llama-cpp-python server on a free loopback port; always killed afterwards."""
    port = free_port()
    log = (tmp_path_factory.mktemp("server") / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVER_MAIN, "--model", str(smollm_path),
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", "2",
         "--verbose", "False"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, f"server exited early, see {log.name}"
            try:
                if httpx.get(f"{url}/v1/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "server did not answer within 120 s"
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _prompt(repo_dir: Path, message: str, history: list[tuple[str, str]]) -> str:
    card = read_simple_card(repo_dir / "cards" / "wren-halloway.json")
    return join_parts(chatml_parts(card, message, user="Tess", history=history))


def test_a_chat_through_the_server(greedy, server: str, repo_dir: Path, smollm_tokenizer) -> None:
    remote = RemoteBackend(server + "/v1")
    assert remote.kind == "llama-cpp-python"
    assert remote.name == "remote:llama-cpp-python"
    history: list[tuple[str, str]] = []
    sampler = greedy.model_copy(update={"max_tokens": 24})
    for message in ("Hello! What is this place?", "Can I stay the night?"):
        text = _prompt(repo_dir, message, history)
        stream = remote.stream(text, sampler=sampler, stop=["<|im_end|>", "\nTess:"], exact_counts=True)
        pieces = list(stream)
        res = stream.result
        assert len(pieces) > 1 and res.text == "".join(pieces) and res.text.strip()
        assert "<|im_end|>" not in res.text and "\nTess:" not in res.text
        m = res.metrics
        # Exact prompt size from the server's /extras/tokenize, equal to our own tokenizer's.
        local = smollm_tokenizer.tokenize(text, special=True)
        assert m.prompt_tokens == len(local) + (1 if smollm_tokenizer.add_bos else 0)
        assert remote.tokenize("Hello <|im_end|>") == (
            ([smollm_tokenizer.bos_id] if smollm_tokenizer.add_bos else [])
            + smollm_tokenizer.tokenize("Hello <|im_end|>", special=True)
        )
        assert m.reused_tokens is None and m.evaluated_tokens is None  # this server does not say
        assert m.time_to_first_token_s is not None and m.generated_tokens >= len(pieces) - 1
        history += [("user", message), ("assistant", res.text)]
    remote.close()


def test_sampler_settings_and_stop_strings_reach_the_server(greedy, server: str, repo_dir: Path) -> None:
    remote = RemoteBackend(server)
    text = _prompt(repo_dir, "Describe the lamp room.", [])
    greedy = greedy.model_copy(update={"max_tokens": 30})
    remote.stream(text, sampler=greedy).collect()  # warm the server's cache, so every run below reuses it
    a = remote.stream(text, sampler=greedy).collect()
    b = remote.stream(text, sampler=greedy).collect()
    assert a.text == b.text and a.text  # temperature 0 is deterministic
    short = remote.stream(text, sampler=greedy.model_copy(update={"max_tokens": 3})).collect()
    assert short.metrics.stop_reason == "max_tokens" and a.text.startswith(short.text)
    words = a.text.split()
    stop = words[len(words) // 2]
    cut = remote.stream(text, sampler=greedy, stop=[stop]).collect()
    assert cut.text == a.text[: a.text.find(stop)]
    hot = remote.stream(text, sampler=greedy.model_copy(update={"temperature": 1.5, "seed": 5, "top_k": 0, "min_p": 0.0})).collect()
    hot2 = remote.stream(text, sampler=greedy.model_copy(update={"temperature": 1.5, "seed": 5, "top_k": 0, "min_p": 0.0})).collect()
    hot3 = remote.stream(text, sampler=greedy.model_copy(update={"temperature": 1.5, "seed": 6, "top_k": 0, "min_p": 0.0})).collect()
    assert hot.text == hot2.text and hot.text != hot3.text  # the seed reached the server
    remote.close()


def test_cancel_and_errors(greedy, server: str, repo_dir: Path) -> None:
    remote = RemoteBackend(server)
    text = _prompt(repo_dir, "Tell me a long story.", [])
    stop = threading.Event()
    stream = remote.stream(text, sampler=greedy.model_copy(update={"max_tokens": 200}), cancel=stop)
    got = []
    for piece in stream:
        got.append(piece)
        if len(got) == 2:
            stop.set()
    assert len(got) == 2 and stream.result.metrics.stop_reason == "cancelled"
    # Still answers afterwards.
    assert remote.stream(text, sampler=greedy.model_copy(update={"max_tokens": 4})).collect().text
    with pytest.raises(BackendError, match="prompt text"):
        remote.stream(PromptInput(ids=(1, 2, 3)))
    remote.close()
    dead = RemoteBackend(f"http://127.0.0.1:{free_port()}", kind="llama.cpp")
    with pytest.raises(BackendError, match="127.0.0.1"):
        dead.stream("hi").collect()
