"""Deterministic synthetic chats for tests and benchmarks: same seed, same chat, on every machine."""

from __future__ import annotations

import random

from .chat import Chat, ChatHeader, ChatMessage

__all__ = ["synthetic_chat"]

_WORDS = (
    "the lamp sea storm rope tide gull salt bread tea night light wave stone harbour ledger "
    "bottle letter kettle oilskin telescope fog bell lantern cliff shore boat oar net anchor "
    "quietly laughs frowns whispers shrugs glances waits listens turns smiles sighs nods"
).split()


def synthetic_chat(
    n_messages: int,
    *,
    characters: tuple[str, ...] = ("Wren Halloway",),
    user: str = "Tess",
    seed: int = 0,
    min_words: int = 6,
    max_words: int = 60,
    narrator_every: int = 0,
) -> Chat:
    """A chat of `n_messages`: the user speaks, then one or more characters reply (a group round)."""
    rng = random.Random(seed)
    messages: list[ChatMessage] = []
    i = 0
    turn = 0
    while i < n_messages:
        if turn % 2 == 1:
            speakers = [user]
        else:
            k = 1 if len(characters) == 1 else rng.randint(1, min(3, len(characters)))
            speakers = rng.sample(list(characters), k)
        for who in speakers:
            if i >= n_messages:
                break
            words = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(min_words, max_words)))
            role = "user" if who == user else "assistant"
            messages.append(ChatMessage(id=str(i), name=who, role=role, text=f"*{words}.*"))
            i += 1
            if narrator_every and i < n_messages and i % narrator_every == 0:
                text = "The wind " + " ".join(rng.choice(_WORDS) for _ in range(8)) + "."
                messages.append(ChatMessage(id=str(i), name="", role="system", text=text))
                i += 1
        turn += 1
    header = ChatHeader(user_name=user, character_name=characters[0], create_date="2026-01-01@09h00m00s")
    return Chat(header=header, messages=messages)
