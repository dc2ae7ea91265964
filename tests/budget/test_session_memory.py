"""The memory end to end with the real model: a reply that evicts makes the session write a
summary (the prompt plus the summary instruction), stored as SillyTavern stores it, kept across
quit and reopen, and shown in the prompt once the history's front moves."""

from __future__ import annotations

import pytest

from rp_context.chat import load_chat, save_chat
from rp_context.memory import MEMORY_KEY, stored_memories
from rp_context.session import ChatSession
from rp_context.synth import synthetic_chat

LONG = ("*Tess sets the lantern down and looks out at the reef, where the light flickers again.* "
        "Tell me everything about the night your father rowed out past the reef, and why the "
        "ledger stops that week. Leave nothing out, not even the part about the bell.")


@pytest.mark.model
def test_a_long_chat_gets_a_memory_that_survives_reopening(repo_dir, tmp_path) -> None:
    path = tmp_path / "long.jsonl"
    save_chat(synthetic_chat(40, seed=4), path)
    card = repo_dir / "cards" / "wren-halloway.json"
    session = ChatSession.open(cards=[card], chat_path=path, n_ctx=2048)
    session.setup.sampler = session.setup.sampler.model_copy(update={"max_tokens": 48, "seed": 1})
    session.send(LONG)
    turn = session.reply()
    text = "".join(turn)
    assert text and turn.message is not None
    fitted = turn.fitted
    assert fitted.report.dropped and fitted.report.eviction == "shift"
    mem = session.memory
    assert mem is not None and mem["text"].strip(), session.memory_error
    # stored on the newest message the summary request showed: one the reply's prompt kept
    kept = [s.message_id for s in fitted.segments if s.kind.value == "chat_message"]
    assert mem["message_id"] in kept and mem["message_id"] != turn.message.id
    on_disk = load_chat(path).chat
    assert on_disk.message(mem["message_id"]).extra[MEMORY_KEY] == mem["text"]

    # quit and reopen: the memory is read back, and shows once the front has moved
    again = ChatSession.open(cards=[card], chat_path=path, n_ctx=2048, backend=session.backend,
                             counter=session.counter)
    assert again.memory is not None and again.memory["text"] == mem["text"]
    again.send(LONG)
    prompt = again.prompt()
    (stored,) = stored_memories(again.chat.messages)
    assert prompt.report.front_index is not None and stored.front is not None
    if prompt.report.front_index > stored.front:
        assert prompt.report.memory is not None
        assert f"[Summary: {mem['text']}]" in prompt.text
    # rendering again writes nothing and gives the same prompt
    before = path.read_bytes()
    assert again.prompt().text == prompt.text
    assert path.read_bytes() == before


@pytest.mark.model
def test_a_summary_server_writes_the_memory(repo_dir, tmp_path, smollm_path) -> None:
    """With `summary_server`, the summary request goes to that llama.cpp server (as token ids:
    it runs the same model) and the chat's own model reads nothing."""
    pytest.importorskip("xllamacpp")
    from rp_context.backends.llamaserver import LlamaServer
    from rp_context.backends.remote import RemoteBackend
    from rp_context.memory import summary_request

    path = tmp_path / "long.jsonl"
    save_chat(synthetic_chat(30, seed=4), path)
    card = repo_dir / "cards" / "wren-halloway.json"
    with LlamaServer(model=smollm_path, n_ctx=1024, n_threads=2, log=tmp_path / "server.log") as srv:
        session = ChatSession.open(cards=[card], chat_path=path, n_ctx=1024, summary_server=srv.url,
                                   kv_state=False)
        session.setup.sampler = session.setup.sampler.model_copy(update={"max_tokens": 32, "seed": 1})
        fitted = session.prompt()
        assert fitted.report.dropped  # turns were evicted: a memory is worth writing
        text = session.update_memory(fitted, force=True)
        assert text and session.memory is not None and session.memory["text"] == text, session.memory_error
        remote = session.summarizer()
        assert isinstance(remote, RemoteBackend) and remote.base_url == srv.url and remote.send_ids
        request = summary_request(fitted, session.setup.budget, session.counter)
        assert remote.last_result is not None
        assert remote.last_result.metrics.prompt_tokens == len(request.ids)
        assert session.backend.cached_ids == []  # the chat's model never ran
        assert load_chat(path).chat.message(session.memory["message_id"]).extra[MEMORY_KEY] == text
