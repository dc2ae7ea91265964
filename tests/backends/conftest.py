"""Fixtures for backend tests: one SmolLM2 backend per module and ChatML prompts as token ids."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from rp_context.quickstart import chatml_parts, read_simple_card
from rp_context.sampling import SamplerSettings

GREEDY = SamplerSettings(temperature=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0, max_tokens=32, seed=1)

ChatIds = Callable[[str, Sequence[tuple[str, str]]], list[int]]


@pytest.fixture(scope="module")
def backend(smollm_path: Path) -> Iterator[object]:
    from rp_context.backends.llama import LlamaBackend

    b = LlamaBackend(smollm_path, n_ctx=2048, n_threads=2)
    yield b
    b.close()


@pytest.fixture(scope="session")
def chat_ids(smollm_tokenizer, repo_dir: Path) -> ChatIds:
    """Token ids of a ChatML roleplay prompt with the sample card: history, then a user message."""
    card = read_simple_card(repo_dir / "cards" / "wren-halloway.json")

    def build(message: str, history: Sequence[tuple[str, str]] = ()) -> list[int]:
        return smollm_tokenizer.tokenize_parts(chatml_parts(card, message, user="Tess", history=history))

    return build
