"""The one place that imports llama_cpp; everything else calls in here lazily."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import BackendError, ModelFileError
from .models import check_gguf

__all__ = ["load_llama", "import_llama_cpp"]


def import_llama_cpp() -> Any:
    """Import llama_cpp, turning a missing or broken install into a BackendError."""
    try:
        import llama_cpp
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise BackendError(
            f"llama-cpp-python is not installed or failed to load ({exc}); pip install llama-cpp-python"
        ) from exc
    return llama_cpp


def load_llama(path: str | Path, **kwargs: Any) -> Any:
    """Load a GGUF with llama.cpp quietly; a file it cannot load raises ModelFileError."""
    p = check_gguf(path)
    llama_cpp = import_llama_cpp()
    kwargs.setdefault("verbose", False)
    try:
        return llama_cpp.Llama(model_path=str(p), **kwargs)
    except (ValueError, RuntimeError, OSError) as exc:
        raise ModelFileError(p, f"llama.cpp could not load this model ({exc})") from exc
