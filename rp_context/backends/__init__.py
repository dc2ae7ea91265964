"""Inference backends: llama.cpp in process, and OpenAI-compatible servers."""

from __future__ import annotations

__all__ = ["LlamaBackend"]


def __getattr__(name: str) -> object:
    # Lazy: importing rp_context.backends must not import llama_cpp.
    if name == "LlamaBackend":
        from .llama import LlamaBackend

        return LlamaBackend
    raise AttributeError(name)
