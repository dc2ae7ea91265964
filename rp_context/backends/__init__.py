"""Inference backends: llama.cpp in process, and OpenAI-compatible servers.

`base` and `stops` are light; `llama` loads llama_cpp and `remote` uses httpx, so both load lazily.
"""

from __future__ import annotations

from .base import Backend, GenerationResult, PromptInput, ReplyStream, TurnMetrics, as_prompt
from .stops import StopScanner

__all__ = [
    "Backend",
    "GenerationResult",
    "PromptInput",
    "ReplyStream",
    "TurnMetrics",
    "as_prompt",
    "StopScanner",
    "LlamaBackend",
    "LlamaLoadOptions",
    "RemoteBackend",
    "run_turns",
    "summarize",
]

_LAZY = {
    "LlamaBackend": ".llama",
    "LlamaLoadOptions": ".llama",
    "RemoteBackend": ".remote",
    "run_turns": ".turns",
    "summarize": ".turns",
}


def __getattr__(name: str) -> object:
    # Lazy: importing rp_context.backends must not import llama_cpp (or numpy, httpx).
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(name)
