"""Deterministic synthetic chats for tests and benchmarks: same seed, same chat, on every machine."""

from __future__ import annotations

import random
from typing import Literal

from .chat import Chat, ChatHeader, ChatMessage

__all__ = ["synthetic_chat"]

_WORDS = (
    "the lamp sea storm rope tide gull salt bread tea night light wave stone harbour ledger "
    "bottle letter kettle oilskin telescope fog bell lantern cliff shore boat oar net anchor "
    "quietly laughs frowns whispers shrugs glances waits listens turns smiles sighs nods"
).split()

# Prose style: roleplay-like sentences, *actions* and "dialogue", from a wider vocabulary.
_SUBJECTS = ("She", "He", "They", "The keeper", "The old man", "The girl", "Everyone", "Nobody")
_VERBS = (
    "sets down", "picks up", "turns over", "wipes", "studies", "pushes aside", "reaches for",
    "lights", "folds", "unrolls", "taps", "drags", "mends", "counts", "hides", "weighs",
)
_OBJECTS = (
    "the brass lantern", "a chipped mug of tea", "the salt-stained ledger", "the spyglass",
    "a coil of wet rope", "the harbour chart", "the last of the bread", "her oilskin coat",
    "the storm shutters", "a bundle of letters", "the logbook", "the kettle", "a tin of matches",
    "the bell rope", "his father's compass", "the supply list", "a driftwood carving",
)
_MANNERS = (
    "slowly", "without a word", "with a tired smile", "as the wind rises", "while the lamp turns",
    "and frowns", "carefully", "as if it might break", "twice", "before anyone can object",
)
_SAYINGS = (
    "The tide turns within the hour.", "I told you the glass was falling.",
    "You should not have come out in this weather.", "Hand me that, would you?",
    "There is a light out past the reef again.", "Nobody has rowed that far since the gale.",
    "Do you hear the bell?", "We keep the lamp lit. That is the whole of the job.",
    "Sit down before you fall down.", "The supply boat is three days late.",
    "I wrote it all in the ledger, every night for twelve years.", "What are you measuring now?",
    "If the fog holds, nobody leaves the island tomorrow.", "Tea first. Questions after.",
    "That compass points the wrong way, you know.", "Keep your voice down; the stairs carry sound.",
)


def _prose(rng: random.Random, n_words: int) -> str:
    """About `n_words` words of roleplay prose: alternating *action* sentences and dialogue."""
    out: list[str] = []
    words = 0
    while words < n_words:
        if rng.random() < 0.55:
            s = f"*{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} {rng.choice(_MANNERS)}.*"
        else:
            s = f'"{rng.choice(_SAYINGS)}"'
        out.append(s)
        words += len(s.split())
    return " ".join(out)


def synthetic_chat(
    n_messages: int,
    *,
    characters: tuple[str, ...] = ("Wren Halloway",),
    user: str = "Tess",
    seed: int = 0,
    min_words: int = 6,
    max_words: int = 60,
    narrator_every: int = 0,
    style: Literal["words", "prose"] = "words",
    user_words: tuple[int, int] | None = None,
) -> Chat:
    """A chat of `n_messages`: the user speaks, then one or more characters reply (a group round).

    `style="prose"` writes roleplay-like *actions* and "dialogue" instead of word salad (closer
    to real chats' token statistics); `user_words` gives the user's own (min, max) length.
    The default arguments produce the same chats as before these options existed.
    """
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
            role = "user" if who == user else "assistant"
            lo, hi = user_words if (user_words and role == "user") else (min_words, max_words)
            if style == "prose":
                text = _prose(rng, rng.randint(lo, hi))
            else:
                text = "*" + " ".join(rng.choice(_WORDS) for _ in range(rng.randint(lo, hi))) + ".*"
            messages.append(ChatMessage(id=str(i), name=who, role=role, text=text))
            i += 1
            if narrator_every and i < n_messages and i % narrator_every == 0:
                if style == "prose":
                    text = f"*The wind rises. {rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)}.*"
                else:
                    text = "The wind " + " ".join(rng.choice(_WORDS) for _ in range(8)) + "."
                messages.append(ChatMessage(id=str(i), name="", role="system", text=text))
                i += 1
        turn += 1
    header = ChatHeader(user_name=user, character_name=characters[0], create_date="2026-01-01@09h00m00s")
    return Chat(header=header, messages=messages)
