"""A chat's cache survives a restart: two `rp-context generate` processes on one chat file, in
process (state file beside the chat) and against llama.cpp's server (slot save/restore)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rp_context.backends.kvstate import chat_state_path

pytestmark = pytest.mark.model


def generate(chat: Path, message: str, *extra: str) -> tuple[dict, str]:
    cmd = [sys.executable, "-m", "rp_context", "generate", "--chat", str(chat), "--message", message,
           "--json", "--max-tokens", "12", "--temperature", "0", "--seed", "1", "--context", "2048",
           *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), proc.stderr


def test_second_process_reads_only_the_new_tokens(tmp_path: Path) -> None:
    chat = tmp_path / "wren.jsonl"
    first, _ = generate(chat, "Hello! What is this place?")
    m1 = first["metrics"]
    assert m1["reused_tokens"] == 0 and m1["evaluated_tokens"] == m1["prompt_tokens"]
    state = chat_state_path(chat)
    assert state.is_file() and state.stat().st_size > 0

    second, err = generate(chat, "Can I stay the night?", "--progress")
    m2 = second["metrics"]
    # Everything the first process read is reused; only the reply and the new message are read.
    assert m2["restored_tokens"] >= m1["prompt_tokens"]
    assert m2["reused_tokens"] >= m1["prompt_tokens"]
    assert m2["evaluated_tokens"] == m2["prompt_tokens"] - m2["reused_tokens"]
    assert m2["evaluated_tokens"] < m2["prompt_tokens"] // 4
    assert f"reading prompt {m2['evaluated_tokens']}/{m2['evaluated_tokens']} tokens" in err

    # Without the saved state the same chat is read from the start.
    third, _ = generate(chat, "Thank you.", "--no-kv-state")
    assert third["metrics"]["reused_tokens"] == 0


def test_a_state_that_does_not_fit_is_a_warning_not_an_error(tmp_path: Path) -> None:
    chat = tmp_path / "wren.jsonl"
    generate(chat, "Hello!")
    state = chat_state_path(chat)
    state.write_bytes(state.read_bytes()[:100])  # cut short
    out, err = generate(chat, "Still there?")
    assert "warning: KV state not restored" in err and str(state) in err
    assert out["metrics"]["reused_tokens"] == 0 and out["text"]
    assert state.stat().st_size > 100  # saved again, whole, after the reply


def test_second_process_on_llama_server_restores_the_slot(tmp_path: Path, smollm_path: Path) -> None:
    pytest.importorskip("xllamacpp")
    from rp_context.backends.llamaserver import LlamaServer

    chat = tmp_path / "wren.jsonl"
    with LlamaServer(model=smollm_path, n_ctx=2048, n_threads=2, slot_save_path=tmp_path / "slots",
                     log=tmp_path / "server.log") as srv:
        first, _ = generate(chat, "Hello! What is this place?", "--server", srv.url)
        m1 = first["metrics"]
        assert m1["reused_tokens"] == 0
        assert list((tmp_path / "slots").iterdir())  # the chat's slot, saved after the reply
        srv.restart()  # the server's caches are gone, its slot files are not
        second, _ = generate(chat, "Can I stay the night?", "--server", srv.url)
    m2 = second["metrics"]
    assert m2["restored_tokens"] >= m1["prompt_tokens"]
    assert m2["reused_tokens"] >= m1["prompt_tokens"]
    assert m2["evaluated_tokens"] == m2["prompt_tokens"] - m2["reused_tokens"]
