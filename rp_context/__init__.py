"""rp_context: build roleplay prompts from character cards, fit them to the context window, run them.

The public API is listed here once; submodules are implementation detail.
Importing rp_context never imports Textual, the `tui` app, or llama_cpp (that loads with a model).
"""

from __future__ import annotations

from .detect import FamilyGuess, detect_family
from .errors import (
    BackendError,
    BudgetError,
    CardError,
    ChatFileError,
    InputFileError,
    ModelFileError,
    PresetError,
    RPContextError,
    TemplateError,
)
from .modelinfo import ModelInfo, model_info
from .models import MODEL_ENV_VAR, check_gguf, default_model_path, resolve_model
from .tokens import LlamaTokenizer, TextPart, TiktokenCounter, TokenCounter

__version__ = "0.1.0"

__all__ = [
    "__version__",
    # errors
    "RPContextError",
    "InputFileError",
    "ModelFileError",
    "CardError",
    "ChatFileError",
    "PresetError",
    "TemplateError",
    "BudgetError",
    "BackendError",
    # models and tokens
    "MODEL_ENV_VAR",
    "check_gguf",
    "default_model_path",
    "resolve_model",
    "ModelInfo",
    "model_info",
    "FamilyGuess",
    "detect_family",
    "TextPart",
    "TokenCounter",
    "LlamaTokenizer",
    "TiktokenCounter",
]
