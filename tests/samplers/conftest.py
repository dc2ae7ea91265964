"""Fixtures for sampler tests: one SmolLM2 backend per module and a short ChatML prompt."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rp_context.quickstart import SimpleCard, chatml_parts
from rp_context.sampling import SamplerSettings

PLAIN = dict(temperature=0.0, top_k=0, top_p=1.0, min_p=0.0, repeat_penalty=1.0, max_tokens=24, seed=3)
"""Greedy decoding with every other sampler off: each test turns on the one it checks."""

CARD = SimpleCard(
    {
        "name": "Wren",
        "description": "{{char}} keeps the Skerry Light, a lighthouse on a rock off a fishing coast.",
        "personality": "dry, kind, practical",
        "first_mes": "You're lucky the tide was turning.",
    }
)


@pytest.fixture(scope="module")
def backend(smollm_path: Path) -> Iterator[object]:
    from rp_context.backends.llama import LlamaBackend

    b = LlamaBackend(smollm_path, n_ctx=1024, n_threads=1, n_threads_batch=1)
    yield b
    b.close()


@pytest.fixture(scope="session")
def chat_prompt(smollm_tokenizer) -> list[int]:
    """Token ids of a short roleplay prompt ending in the assistant header."""
    parts = chatml_parts(CARD, "Hello! What is this place?", user="Tess")
    return smollm_tokenizer.tokenize_parts(parts)


@pytest.fixture(scope="session")
def plain():
    """Settings with one sampler turned on: `plain(xtc_probability=1.0)`."""

    def make(**over: object) -> SamplerSettings:
        return SamplerSettings(**{**PLAIN, **over})

    return make
