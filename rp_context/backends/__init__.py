"""Inference backends: llama.cpp in process, and OpenAI-compatible servers.

`base` and `stops` are light; `llama` needs llama_cpp and numpy and `remote` httpx, so those load
on first use of their names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import Backend, GenerationResult, PromptInput, ReplyStream, TurnMetrics, as_prompt
from .stops import StopScanner

if TYPE_CHECKING:
    from .llama import LlamaBackend, LlamaLoadOptions
    from .remote import RemoteBackend
    from .turns import run_turns, summarize

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

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
