"""In-process inference through llama-cpp-python: one owner of one model, fed token ids."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .._llama import load_llama
from ..errors import BackendError
from ..models import resolve_model

__all__ = ["LlamaBackend"]


class LlamaBackend:
    """Owns one `llama_cpp.Llama`; generation is serialised, prompts are token ids (no re-tokenizing).

    `n_gpu_layers=-1` offloads every layer on a Metal or CUDA build of llama-cpp-python.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_gpu_layers: int = 0,
        seed: int = 0xC0FFEE,
        **llama_kwargs: Any,
    ) -> None:
        self.path = resolve_model(model_path)
        self.n_ctx = n_ctx
        self._llm: Any = load_llama(
            self.path,
            n_ctx=n_ctx,
            n_threads=n_threads,
            n_gpu_layers=n_gpu_layers,
            seed=seed,
            **llama_kwargs,
        )
        self._lock = threading.Lock()

    @property
    def llama(self) -> Any:
        """The underlying `llama_cpp.Llama`."""
        return self._llm

    def stream(
        self,
        prompt_ids: Sequence[int],
        *,
        max_tokens: int = 200,
        stop: Sequence[str] = (),
        temperature: float = 0.8,
        top_p: float = 0.95,
        min_p: float = 0.05,
        top_k: int = 40,
        repeat_penalty: float = 1.1,
        seed: int | None = None,
    ) -> Iterator[str]:
        """Yield the reply text piece by piece; stops on the model's end-of-generation token or a stop string."""
        if len(prompt_ids) + 1 > self.n_ctx:
            raise BackendError(
                f"prompt of {len(prompt_ids)} tokens does not fit the {self.n_ctx}-token context"
            )
        with self._lock:
            if seed is not None:
                self._llm.set_seed(seed)
            chunks = self._llm.create_completion(
                prompt=list(prompt_ids),
                max_tokens=max_tokens,
                stop=list(stop) or None,
                temperature=temperature,
                top_p=top_p,
                min_p=min_p,
                top_k=top_k,
                repeat_penalty=repeat_penalty,
                stream=True,
            )
            try:
                for chunk in chunks:
                    text = chunk["choices"][0]["text"]
                    if text:
                        yield text
            finally:
                chunks.close()
