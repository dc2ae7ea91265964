"""Group prompts from the shipped three-member roster: speaker order per strategy and the cards
each mode puts in the prompt; and determinism of macros and lore across renders and reloads."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rp_context.cards import GroupRoster
from rp_context.chat import Chat, ChatHeader, ChatMessage, load_chat, save_chat
from rp_context.pipeline import build_prompt, load_cast, load_setup

MEMBERS = ["Wren Halloway", "Tobias Marrow", "Absalom Pike"]


def _chat() -> Chat:
    return Chat(
        header=ChatHeader(user_name="Sam Ashdown", character_name="The Skerry Light", create_date="2026-02-01@20h00m00s"),
        messages=[
            ChatMessage(id="0", name="Wren Halloway", role="assistant", text="Door's open. Mind the step."),
            ChatMessage(id="1", name="Sam Ashdown", role="user", text="Evening, all. Tobias, is the kettle on?"),
        ],
    )


@pytest.fixture
def cast(repo_dir: Path):
    return load_cast([], roster=repo_dir / "cards" / "skerry-light.roster.yaml",
                     persona=repo_dir / "cards" / "sam-ashdown.persona.yaml")


def _with_mode(cast, mode: str, activation: str | None = None):
    roster: GroupRoster = cast.roster.model_copy(update={"generation_mode": mode})
    if activation:
        roster = roster.model_copy(update={"activation": activation})
    return type(cast)(cast.cards, roster, cast.persona, [])


def _prompt(cast, speaker: str, tiktoken_counter) -> str:
    setup = load_setup("chatml")
    return build_prompt(cast, _chat(), setup, tiktoken_counter, n_ctx=8192, reserve=256, speaker=speaker).text


def test_roster_members_and_persona(cast) -> None:
    assert cast.names == MEMBERS
    assert cast.persona is not None and cast.persona.name == "Sam Ashdown"


@pytest.mark.parametrize("mode", ["join", "swap"])
def test_cards_in_the_prompt_per_mode(cast, tiktoken_counter, mode: str) -> None:
    c = _with_mode(cast, mode)
    descs = {card.data.name: card.data.description.split(".")[0][:40] for card in c.cards}
    for speaker in MEMBERS:
        text = _prompt(c, speaker, tiktoken_counter)
        for name, start in descs.items():
            first_words = start.replace("{{char}}", name)
            present = first_words in text
            assert present == (mode == "join" or name == speaker), (mode, speaker, name)
        assert text.endswith("<|im_start|>assistant\n" + speaker + ":")
        # other members' names and the user's are stop strings
    if mode == "join":
        prompts = [_prompt(c, s, tiktoken_counter) for s in MEMBERS]
        card_block = [p[: p.index("<|im_end|>")] for p in prompts]
        # the joined card block is the same whoever speaks, except the {{char}}-dependent lines
        assert card_block[0].count("[") == card_block[1].count("[") == card_block[2].count("[")


def test_join_mode_shares_the_long_prefix_across_speakers(cast, smollm_tokenizer) -> None:
    setup = load_setup("chatml")
    join = [build_prompt(_with_mode(cast, "join"), _chat(), setup, smollm_tokenizer, n_ctx=8192,
                         reserve=256, speaker=s).ids for s in MEMBERS]
    swap = [build_prompt(_with_mode(cast, "swap"), _chat(), setup, smollm_tokenizer, n_ctx=8192,
                         reserve=256, speaker=s).ids for s in MEMBERS]

    def shared(a, b):
        n = 0
        while n < min(len(a), len(b)) and a[n] == b[n]:
            n += 1
        return n

    assert shared(join[0], join[1]) > 10 * shared(swap[0], swap[1])


def test_depth_prompt_of_a_joined_member(cast, tiktoken_counter) -> None:
    text = _prompt(_with_mode(cast, "join"), "Wren Halloway", tiktoken_counter)
    assert "Absalom Pike is solid only while the lamp is lit" in text
    swap = _prompt(_with_mode(cast, "swap"), "Wren Halloway", tiktoken_counter)
    assert "solid only while the lamp is lit" not in swap


def test_speaker_order_per_strategy(cast, tiktoken_counter) -> None:
    from rp_context.session import ChatSession

    def picks(activation: str, chat: Chat, user_typed: bool = True) -> list[str]:
        c = _with_mode(cast, "join", activation)
        s = ChatSession(c, load_setup("chatml"), chat, counter=tiktoken_counter)
        return s.next_speakers(user_typed=user_typed)

    chat = _chat()
    assert picks("list", chat) == MEMBERS
    natural = picks("natural", chat)
    assert natural[0] == "Tobias Marrow"  # named in the user's message
    # pooled, going on without new input: one member who has not spoken since the user's last
    # message; once all have, anyone but the last speaker
    chat.messages.append(ChatMessage(id="2", name="Tobias Marrow", role="assistant", text="It is."))
    said: list[str] = []
    for _ in range(3):
        pooled = picks("pooled", chat, user_typed=False)
        assert len(pooled) == 1
        said.append(pooled[0])
        chat.messages.append(ChatMessage(id=str(len(chat.messages)), name=pooled[0], role="assistant", text="..."))
    assert sorted(said[:2]) == ["Absalom Pike", "Wren Halloway"] and said[2] != said[1]
    assert picks("manual", chat) == []
    assert picks("natural", _chat()) == natural  # seeded by the chat: same state, same pick


def test_rendering_is_deterministic_across_reloads(repo_dir: Path, tmp_path: Path) -> None:
    """Macros and lore decide the same way on every render of the same chat, also after reload."""
    chat_file = tmp_path / "chat.jsonl"
    chat = _chat()
    chat.messages.append(ChatMessage(id="2", name="Tobias Marrow", role="assistant",
                                     text="Kettle's on. {{random:black,green,smoky}} tea, {{roll:2d6}} biscuits."))
    chat.messages.append(ChatMessage(id="3", name="Sam Ashdown", role="user",
                                     text="Tell me about the Reply Ledger and the keeper's lamp."))
    save_chat(chat, chat_file)
    cmd = [sys.executable, "-m", "rp_context", "render", "--roster", str(repo_dir / "cards" / "skerry-light.roster.yaml"),
           "--chat", str(chat_file), "--preset", "chatml", "--estimate", "--json"]
    outs = [subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=repo_dir) for _ in range(2)]
    for o in outs:
        assert o.returncode == 0, o.stderr
    a, b = (json.loads(o.stdout) for o in outs)
    assert a["text"] == b["text"] and a["lore"] == b["lore"]
    assert "{{random" not in a["text"] and "{{roll" not in a["text"]
    # the same chat copied elsewhere and reloaded renders identically too
    copy = tmp_path / "copy.jsonl"
    shutil.copy(chat_file, copy)
    reloaded = load_chat(copy).chat
    assert [m.text for m in reloaded.messages] == [m.text for m in chat.messages]
    cmd[cmd.index(str(chat_file))] = str(copy)
    c = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=repo_dir)
    assert json.loads(c.stdout)["text"] == a["text"]
    fired = [d for d in a["lore"] if d["status"] == "fired"]
    assert fired, "the Ledger/lamp message should fire a lorebook entry of the sample cards"
