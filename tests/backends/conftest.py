"""Fixtures for backend tests: one SmolLM2 backend per module and ChatML prompts as token ids."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from rp_context.quickstart import SimpleCard, chatml_parts
from rp_context.sampling import SamplerSettings

GREEDY = SamplerSettings(temperature=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0, max_tokens=32, seed=1)

ChatIds = Callable[[str, Sequence[tuple[str, str]]], list[int]]


@pytest.fixture(scope="session")
def greedy() -> SamplerSettings:
    """Greedy decoding: repeatable replies to compare runs."""
    return GREEDY


@pytest.fixture(scope="module")
def backend(smollm_path: Path) -> Iterator[object]:
    from rp_context.backends.llama import LlamaBackend

    b = LlamaBackend(smollm_path, n_ctx=2048, n_threads=2)
    yield b
    b.close()


CARD = SimpleCard(
    {
        "name": "Wren",
        "description": "{{char}} keeps the Skerry Light, a lighthouse on a rock off a fishing coast.",
        "personality": "dry, kind, practical",
        "first_mes": "You're lucky the tide was turning.",
    }
)
"""A short card: this machine pre-fills only a few hundred tokens a second."""


HISTORY = (
    ("user", "Hello! What is this place?"),
    ("assistant", "The Skerry Light. I pulled you out of the surf before the tide turned."),
    ("user", "Who are you?"),
    ("assistant", "Wren Halloway, keeper of the light. Nine years alone out here with the cat."),
    ("user", "Do you have any tea?"),
    ("assistant", "Kettle's on the stove. Mind the cat, he bites strangers. The good leaves are in the tin."),
)


@pytest.fixture(scope="session")
def history() -> list[tuple[str, str]]:
    """Three exchanges with Wren, for tests that evict the first and change what comes before."""
    return list(HISTORY)


@pytest.fixture(scope="session")
def chat_ids(smollm_tokenizer) -> ChatIds:
    """Token ids of a short ChatML roleplay prompt: history, then a user message."""
    card = CARD

    def build(message: str, history: Sequence[tuple[str, str]] = ()) -> list[int]:
        return smollm_tokenizer.tokenize_parts(chatml_parts(card, message, user="Tess", history=history))

    return build
