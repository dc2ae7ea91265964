"""Memory of evicted turns: stored as SillyTavern's Summarize stores it, shown exactly when turns
are evicted, chosen deterministically from the chat, changed only when the front moves."""

from __future__ import annotations

import json

import pytest

from rp_context.assembly import assemble
from rp_context.budget import fit_prompt
from rp_context.cards import load_card
from rp_context.chat import chat_from_text, chat_to_text, save_chat
from rp_context.cli import main
from rp_context.memory import (
    MEMORY_KEY,
    choose_memory,
    memory_due,
    store_memory,
    stored_memories,
    summary_segments,
)
from rp_context.policy import BudgetPolicy
from rp_context.presets.library import load_preset
from rp_context.segments import SegmentKind
from rp_context.synth import synthetic_chat

SUMMARY = "Wren and Tess kept the lamp lit through the storm; the supply boat is late."


def _fit(repo_dir, counter, chat, n_ctx, policy=None):
    card = load_card(repo_dir / "cards" / "wren-halloway.json").card
    assembled = assemble(cards=[card], chat=chat, instruct=load_preset("chatml", "instruct"),
                         context=load_preset("default", "context"),
                         sysprompt=load_preset("roleplay", "sysprompt"))
    return fit_prompt(assembled, counter, n_ctx=n_ctx, reserve=128, policy=policy or BudgetPolicy())


def test_memory_is_shown_exactly_when_turns_are_evicted(repo_dir, tiktoken_counter) -> None:
    chat = synthetic_chat(60, seed=2)
    store_memory(chat, SUMMARY, covers=chat.messages[30].id, front=None)
    big = _fit(repo_dir, tiktoken_counter, chat, 16384)
    assert not big.report.dropped
    assert all(s.kind != SegmentKind.MEMORY for s in big.segments)
    assert SUMMARY not in big.text and big.report.memory is None
    small = _fit(repo_dir, tiktoken_counter, chat, 2048)
    assert small.report.dropped
    mem = [s for s in small.segments if s.kind == SegmentKind.MEMORY]
    assert len(mem) == 1 and f"[Summary: {SUMMARY}]" in small.text
    # after the pinned top, before the first kept message
    kinds = [s.kind for s in small.segments]
    first_msg = kinds.index(SegmentKind.CHAT_MESSAGE)
    assert kinds.index(SegmentKind.MEMORY) == first_msg - 1
    r = small.report
    assert r.memory == {"text": SUMMARY, "message_id": chat.messages[30].id, "covers": 31}
    assert r.turns_covered == min(len(r.dropped), 31)
    assert r.tokens <= r.budget


def test_re_rendering_with_memory_is_deterministic_and_writes_nothing(repo_dir, tiktoken_counter) -> None:
    chat = synthetic_chat(60, seed=2)
    store_memory(chat, SUMMARY, covers=chat.messages[40].id, front=None)
    before = chat_to_text(chat)
    a = _fit(repo_dir, tiktoken_counter, chat, 2048)
    b = _fit(repo_dir, tiktoken_counter, chat_from_text(before).chat, 2048)
    assert a.text == b.text and a.ids == b.ids
    # the messages (and their stored memory) are as they were; the header may gain frozen macros
    assert chat_to_text(chat).splitlines()[1:] == before.splitlines()[1:]


def test_stored_the_sillytavern_way_and_round_trips(tmp_path) -> None:
    chat = synthetic_chat(10, seed=2)
    store_memory(chat, SUMMARY, covers=chat.messages[7].id, front=chat.messages[2].id)
    path = tmp_path / "c.jsonl"
    save_chat(chat, path)
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    st_message = lines[1 + 7]
    assert st_message["extra"][MEMORY_KEY] == SUMMARY  # where Summarize reads it
    again = chat_from_text(path.read_text()).chat
    (mem,) = stored_memories(again.messages)
    assert (mem.index, mem.text, mem.front) == (7, SUMMARY, 2)


def test_a_new_summary_shows_only_once_the_front_moves() -> None:
    chat = synthetic_chat(30, seed=2)
    store_memory(chat, "old", covers=chat.messages[10].id, front=chat.messages[0].id)
    store_memory(chat, "new", covers=chat.messages[20].id, front=chat.messages[6].id)
    mems = stored_memories(chat.messages)
    assert choose_memory(mems, None) is None  # nothing evicted: no memory
    assert choose_memory(mems, 6).text == "old"  # written at this front: not yet
    assert choose_memory(mems, 12).text == "new"  # the front moved: now it shows


def test_an_imported_summary_without_our_front_shows_at_once() -> None:
    chat = synthetic_chat(30, seed=2)
    chat.messages[12].extra[MEMORY_KEY] = "from SillyTavern"
    (mem,) = stored_memories(chat.messages)
    assert mem.front is None and choose_memory([mem], 3).text == "from SillyTavern"


def test_memory_opt_out(repo_dir, tiktoken_counter) -> None:
    chat = synthetic_chat(60, seed=2)
    store_memory(chat, SUMMARY, covers=chat.messages[40].id, front=None)
    fitted = _fit(repo_dir, tiktoken_counter, chat, 2048, BudgetPolicy(memory=False))
    assert fitted.report.dropped and SUMMARY not in fitted.text and fitted.report.memory is None


def test_summary_request_reuses_the_prompt_up_to_its_tail(repo_dir, tiktoken_counter) -> None:
    chat = synthetic_chat(60, seed=2)
    fitted = _fit(repo_dir, tiktoken_counter, chat, 2048)
    policy = BudgetPolicy(memory_length=120)
    segs = summary_segments(fitted, policy)
    from rp_context.budget import request_ids

    ids, _, text = request_ids(fitted, segs, tiktoken_counter)
    assert tiktoken_counter.tokenize(text, special=True) == ids  # the text sent to a server that takes text
    history_end = max(i for i, s in enumerate(fitted.segments) if s.kind == SegmentKind.CHAT_MESSAGE)
    assert [s.id for s in segs[: history_end + 1]] == [s.id for s in fitted.segments[: history_end + 1]]
    assert "Limit the summary to 90 words" in segs[-2].text
    assert segs[-1].kind == SegmentKind.GENERATION_HEADER
    # the request starts with the reply prompt up to its volatile tail: the cache is reused
    shared = 0
    while shared < min(len(ids), len(fitted.ids)) and ids[shared] == fitted.ids[shared]:
        shared += 1
    assert shared >= 0.8 * len(fitted.ids)


@pytest.mark.parametrize("eviction", ["chunked", "shift"])
def test_memory_due_before_the_first_eviction_and_after_each_chunk(repo_dir, tiktoken_counter,
                                                                   eviction) -> None:
    policy = BudgetPolicy(eviction=eviction, stripping=False)
    chat = synthetic_chat(4, seed=2)
    short = _fit(repo_dir, tiktoken_counter, chat, 2048, policy)
    assert not memory_due(short, [], policy, len(chat.messages))  # far from full: nothing to do
    chat = synthetic_chat(60, seed=2)
    full = _fit(repo_dir, tiktoken_counter, chat, 2048, policy)
    assert full.report.dropped
    assert memory_due(full, [], policy, 60)  # evicting with no memory
    store_memory(chat, SUMMARY, covers=chat.messages[-1].id, front=full.report.front)
    mems = stored_memories(chat.messages)
    assert not memory_due(full, mems, policy, 60)  # just written at this front


def test_render_json_shows_the_memory(repo_dir, tmp_path, capsys) -> None:
    chat = synthetic_chat(60, seed=2)
    store_memory(chat, SUMMARY, covers=chat.messages[45].id, front=None)
    path = tmp_path / "chat.jsonl"
    save_chat(chat, path)
    before = path.read_bytes()
    rc = main(["render", "--card", str(repo_dir / "cards" / "wren-halloway.json"), "--chat", str(path),
               "--context", "2048", "--json", "--estimate"])
    d = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert d["memory"]["text"] == SUMMARY and d["memory"]["message_id"] == chat.messages[45].id
    assert d["retention"]["turns_covered_by_memory"] > 0
    assert d["sections"]["memory"] > 0
    assert path.read_bytes() == before  # render never writes a summary


def test_a_full_window_leaves_the_newest_messages_out_of_the_summary_request(repo_dir, tiktoken_counter) -> None:
    """With the window nearly full (the app at 1,024 tokens), the summary request drops its newest
    messages until the summary fits beside it, stays a prefix of the reply prompt's history, and
    covers only the messages it showed; a later summary covers the rest."""
    from rp_context.memory import summary_request

    chat = synthetic_chat(60, seed=2)
    policy = BudgetPolicy(memory_length=200, memory_share=0.25)
    fitted = _fit(repo_dir, tiktoken_counter, chat, 1024, policy)
    assert fitted.report.tokens + 200 > fitted.report.n_ctx  # the whole prompt leaves no room
    req = summary_request(fitted, policy, tiktoken_counter)
    assert len(req.ids) + req.max_tokens <= fitted.report.n_ctx and req.max_tokens == 200
    kept = [s.message_id for s in fitted.segments if s.kind == SegmentKind.CHAT_MESSAGE]
    assert req.covers in kept and req.covers != kept[-1]
    shown = kept[: kept.index(req.covers) + 1]
    text = tiktoken_counter.detokenize(req.ids)
    assert all(chat.find(i).text in text for i in shown)
    assert chat.find(kept[-1]).text not in text
    short = BudgetPolicy(memory_length=16)  # a summary short enough to fit beside the prompt
    wide = _fit(repo_dir, tiktoken_counter, chat, 2048, short)
    newest = [s.message_id for s in wide.segments if s.kind == SegmentKind.CHAT_MESSAGE][-1]
    assert summary_request(wide, short, tiktoken_counter).covers == newest
