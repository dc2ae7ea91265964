"""Random conversations for the template comparisons: unicode, empty content, surrounding
whitespace and newlines, long text, system messages at the start and in the middle."""

from __future__ import annotations

import random

from rp_context.templates import Message

# ASCII whitespace only around content: llama.cpp trims with C isspace(), Jinja's |trim with
# str.strip(); they agree on these (see test_unicode_whitespace_follows_llamacpp).
_PADS = ["", " ", "  ", "\n", "\n\n", "\t", " \n ", "\r\n", "   \n"]
_WORDS = [
    "hello", "Wren", "the", "lantern", "✓", "ünïcödé", "日本語", "😀", "naïve", "Ωμέγα", "<b>",
    "*smiles*", '"quoted"', "{{char}}", "line\nbreak", "tab\there", "emoji 🐉 fire", "a", "?", "\\n",
]


def random_text(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.1:
        return ""
    if roll < 0.15:
        return rng.choice(_PADS[1:])
    n = rng.randint(300, 900) if roll > 0.95 else rng.randint(1, 12)
    body = " ".join(rng.choice(_WORDS) for _ in range(n))
    return rng.choice(_PADS) + body + rng.choice(_PADS)


def random_conversation(rng: random.Random, *, alternating: bool = False) -> list[Message]:
    """A conversation of 1-8 messages; `alternating` keeps a system message only first and
    then strictly user/assistant from the user (what the strict HF templates accept)."""
    msgs: list[Message] = []
    if rng.random() < 0.6:
        msgs.append(Message("system", random_text(rng)))
    n = rng.randint(1, 7)
    if alternating:
        for i in range(n):
            msgs.append(Message("user" if i % 2 == 0 else "assistant", random_text(rng)))
        return msgs
    for _ in range(n):
        role = rng.choices(["user", "assistant", "system"], weights=[5, 5, 1])[0]
        msgs.append(Message(role, random_text(rng)))
    return msgs


def conversations(seed: int, count: int, **kw: bool) -> list[list[Message]]:
    rng = random.Random(seed)
    return [random_conversation(rng, **kw) for _ in range(count)]
