"""The synthetic chat generator the benchmarks rely on: deterministic, and shaped as asked."""

from __future__ import annotations

import re

from rp_context.synth import synthetic_chat

NAMES = ("Wren Halloway", "Tobias Marrow", "Absalom Pike")


def _dump(chat) -> list[tuple[str, str, str, str]]:
    return [(m.id, m.name, m.role, m.text) for m in chat.messages]


def test_same_seed_same_chat_and_seeds_differ() -> None:
    a = synthetic_chat(80, characters=NAMES, seed=5, style="prose", narrator_every=7)
    b = synthetic_chat(80, characters=NAMES, seed=5, style="prose", narrator_every=7)
    c = synthetic_chat(80, characters=NAMES, seed=6, style="prose", narrator_every=7)
    assert _dump(a) == _dump(b)
    assert _dump(a) != _dump(c)


def test_prose_style_has_actions_dialogue_and_lengths() -> None:
    chat = synthetic_chat(200, characters=NAMES, user="Sam", seed=1, style="prose",
                          min_words=30, max_words=60, user_words=(5, 12))
    assert len(chat.messages) == 200
    for m in chat.messages:
        words = len(m.text.split())
        # a sentence is added while under the drawn length, so at most one sentence over it
        if m.role == "user":
            assert 5 <= words <= 12 + 25, m.text
        else:
            assert 30 <= words <= 60 + 25, m.text
        assert re.search(r"\*[^*]+\*|\"[^\"]+\"", m.text)
    texts = " ".join(m.text for m in chat.messages)
    assert "*" in texts and '"' in texts
    # group rounds: the user alternates with one or more characters
    roles = [m.role for m in chat.messages]
    assert "user" in roles and roles.count("assistant") > roles.count("user")


def test_default_style_is_the_word_list() -> None:
    from rp_context.synth import _WORDS

    chat = synthetic_chat(50, characters=NAMES, seed=3, narrator_every=4, min_words=6, max_words=9)
    vocab = set(_WORDS)
    for m in chat.messages:
        if m.role == "system":
            continue
        words = m.text.strip("*.").split()
        assert 6 <= len(words) <= 9
        assert set(words) <= vocab, m.text
