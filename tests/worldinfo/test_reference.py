"""SillyTavern's own Eldoria lorebook and the Seraphina card's book, activated for hand-written chats.

Expected results follow the research notes (sillytavern.md §8), not this code: keys are matched
case-insensitively as whole words in the newest 2 messages, recursion scans fired content,
and each bucket lists entries in ascending order with ties in reverse activation order.
"""

from __future__ import annotations

import pytest
from _wi import Msg, counter, scan

from rp_context.cards import load_card
from rp_context.cards.lorebook import load_lorebook, save_lorebook
from rp_context.macros import MacroContext

GLADE_CHAT = [
    Msg("Seraphina", "*She tends to your wounds.* You are safe now."),
    Msg("User", "Thank you. Where am I?"),
    Msg("Seraphina", "You're in my glade, deep within Eldoria."),
    Msg("User", "Is it dangerous out there?"),
]


@pytest.fixture(scope="module")
def eldoria(eldoria_path):
    return load_lorebook(eldoria_path).book


@pytest.fixture(scope="module")
def seraphina_book(seraphina_path):
    book = load_card(seraphina_path).card.data.character_book
    assert book is not None
    return book


def test_eldoria_glade_chat_with_recursion(eldoria):
    result = scan(eldoria, GLADE_CHAT)
    # Pass 1: 'eldoria' (entry 0) and 'glade' (entry 2) are in the newest message.
    # Pass 2 (recursion): entry 0's text says "beasts" (entry 1) and "magic" (entry 3).
    assert [d.status for d in result.decisions] == ["fired"] * 4
    by_uid = {d.uid: d for d in result.decisions}
    assert by_uid[0].scan_pass == 1 and by_uid[2].scan_pass == 1
    assert by_uid[1].scan_pass == 2 and by_uid[3].scan_pass == 2
    assert by_uid[0].matched_key == "eldoria" and "message #2" in by_uid[0].reason
    assert by_uid[2].matched_key == "glade"
    assert "recursion pass 1" in by_uid[1].reason
    # All order 100: activation order 0, 2, 1, 3 unshifted into the bucket.
    assert [e.uid for e in result.before] == [3, 1, 2, 0]
    assert result.after == [] and result.at_depth == []
    assert result.before_text() == "\n".join(e.content for e in result.before)
    assert result.passes == 3


def test_eldoria_without_recursion(eldoria):
    result = scan(eldoria, GLADE_CHAT, recursive=False)
    assert [e.uid for e in result.before] == [2, 0]
    assert {d.uid: d.status for d in result.decisions} == {0: "fired", 1: "no_match", 2: "fired", 3: "no_match"}


def test_eldoria_scan_depth(eldoria):
    # The glade/Eldoria message is third from the end: out of reach at depth 2.
    messages = [*GLADE_CHAT, Msg("Seraphina", "Rest now.")]
    assert scan(eldoria, messages).fired == []
    deeper = scan(eldoria, messages, scan_depth=3)
    assert {e.uid for e in deeper.fired} == {0, 1, 2, 3}
    # Depth 0 scans nothing at all.
    assert scan(eldoria, GLADE_CHAT, scan_depth=0).fired == []


def test_eldoria_whole_words_and_case(eldoria):
    woods = [Msg("User", "Tell me about the WOODS.")]
    # 'wood' is one word: with whole words it does not match "woods".
    assert scan(eldoria, woods, recursive=False).fired == []
    assert [e.uid for e in scan(eldoria, woods, recursive=False, match_whole_words=False).before] == [0]
    # Case-sensitive: 'wood' is not in "WOODS" at all.
    assert scan(eldoria, woods, recursive=False, match_whole_words=False, case_sensitive=True).fired == []
    # Punctuation is a word boundary; a multi-word key is a plain substring.
    assert [e.uid for e in scan(eldoria, [Msg("User", "(magic!)")], recursive=False).before] == [3]
    assert [e.uid for e in scan(eldoria, [Msg("User", "a Magical Forestry")], recursive=False, match_whole_words=True).before] == [0]


def test_eldoria_include_names(eldoria):
    messages = [Msg("Forest Spirit", "Hello, traveller.")]
    assert [e.uid for e in scan(eldoria, messages, recursive=False).before] == [0]
    assert scan(eldoria, messages, recursive=False, include_names=False).fired == []


def test_eldoria_budget_stops_recursion(eldoria):
    count = counter()
    full = scan(eldoria, GLADE_CHAT)
    cost = {e.uid: count.count(e.content + "\n") for e in full.fired}
    cap = cost[0] + cost[2] + 1
    result = scan(eldoria, GLADE_CHAT, budget_cap=cap)
    assert [e.uid for e in result.before] == [2, 0]
    assert result.used_tokens == cost[0] + cost[2] < result.budget_tokens == cap
    # Pass 2 (recursion) matched entries 1 and 3, but entry 1 overflows and the rest is skipped.
    assert result.overflowed and result.passes == 2
    d1, d3 = result.decision("Eldoria.1"), result.decision("Eldoria.3")
    assert (d1.status, d3.status) == ("budget", "budget")
    assert d1.reason.endswith(f"budget: {cost[0] + cost[2] + cost[1]}/{cap} tokens")
    assert "already full" in d3.reason
    # One token less, and entry 2 (second in scan order) no longer fits.
    tight = scan(eldoria, GLADE_CHAT, budget_cap=cap - 1)
    assert [e.uid for e in tight.before] == [0]
    d2 = tight.decision("Eldoria.2")
    assert d2.status == "budget"
    assert d2.reason.endswith(f"budget: {cost[0] + cost[2]}/{cap - 1} tokens")


def test_seraphina_card_book_matches_world_file(seraphina_book, eldoria):
    """The card embeds the same world; SillyTavern activates both the same way."""
    ctx = MacroContext(user="Alex", char="Seraphina")
    from_card = scan(seraphina_book, GLADE_CHAT, macro_ctx=ctx, seed="a")
    from_file = scan(eldoria, GLADE_CHAT, macro_ctx=ctx, seed="a")
    assert [(e.uid, e.content) for e in from_card.before] == [(e.uid, e.content) for e in from_file.before]
    assert [e.uid for e in from_card.before] == [3, 1, 2, 0]
    # Macros are expanded in the content.
    glade = next(e for e in from_card.before if e.uid == 2)
    assert glade.content.startswith('Alex: "What is the glade?"\nSeraphina: *Seraphina smiles softly')
    assert "{{" not in from_card.before_text()


def test_seraphina_monsters_only(seraphina_book):
    messages = [Msg("User", "Are there monsters out there?")]
    result = scan(seraphina_book, messages, recursive=False)
    assert [e.uid for e in result.before] == [1]
    assert result.decision("Eldoria.1").matched_key == "monsters"  # 'monster' alone is not a whole word here


def test_deterministic_across_runs_and_reload(eldoria_path, tmp_path):
    first = scan(load_lorebook(eldoria_path).book, GLADE_CHAT, seed="chat-1:4")
    second = scan(load_lorebook(eldoria_path).book, GLADE_CHAT, seed="chat-1:4")
    assert first.model_dump() == second.model_dump()
    copy = tmp_path / "Eldoria.json"
    save_lorebook(load_lorebook(eldoria_path), copy)
    reloaded = scan(load_lorebook(copy).book, GLADE_CHAT, seed="chat-1:4")
    assert reloaded.model_dump() == first.model_dump()


def test_exact_tokenizer_budget(eldoria, smollm_tokenizer):
    result = scan(eldoria, GLADE_CHAT, token_counter=smollm_tokenizer, ctx=2048)
    assert result.budget_tokens == 512
    assert result.used_tokens < 512
    assert result.used_tokens == sum(e.tokens for e in result.fired)
    assert all(e.tokens == smollm_tokenizer.count(e.content + "\n") for e in result.fired)
    # 2048 tokens cannot hold all four entries: something was left out for the budget.
    assert result.overflowed and any(d.status == "budget" for d in result.decisions)


def test_card_book_already_loaded_as_world_is_skipped(eldoria, seraphina_book):
    """SillyTavern skips a character book that is already loaded (Seraphina's book is Eldoria)."""
    both = scan([eldoria, seraphina_book], GLADE_CHAT)
    assert [e.book for e in both.fired] == ["Eldoria"] * 4
    skipped = [d for d in both.decisions if d.book == "Eldoria#2"]
    assert len(skipped) == 4
    assert all(d.status == "disabled" and "already loaded" in d.reason for d in skipped)
