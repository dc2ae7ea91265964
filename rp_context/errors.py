"""The one error tree of rp_context; every failure the library raises on purpose is an RPContextError.

    RPContextError
    ├── InputFileError            a file the user gave us is missing, unreadable or malformed
    │   ├── ModelFileError        not a GGUF model (missing, wrong magic bytes, unloadable)
    │   ├── CardError             a character card, lorebook, persona or roster is broken
    │   ├── ChatFileError         a chat file is broken
    │   └── PresetError           a preset is malformed (unknown key, bad value)
    ├── TemplateError             a chat template cannot render this conversation
    ├── BudgetError               the pinned content does not fit the context window
    ├── BackendError              the inference backend failed (load, generate, server)
    └── GroupError                a group's roster and cards disagree (no card, unknown speaker)

The command line turns any of these into one line on stderr and exit code 2.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "RPContextError",
    "InputFileError",
    "ModelFileError",
    "CardError",
    "ChatFileError",
    "PresetError",
    "TemplateError",
    "BudgetError",
    "BackendError",
    "GroupError",
]


class RPContextError(Exception):
    """Base class of every error rp_context raises on purpose."""


class InputFileError(RPContextError):
    """A user-supplied file is missing or malformed; the message names the file and the problem."""

    def __init__(self, path: str | Path | None, reason: str) -> None:
        self.path = Path(path) if path is not None else None
        self.reason = reason
        super().__init__(f"{self.path}: {reason}" if self.path is not None else reason)


class ModelFileError(InputFileError):
    """The model path is missing, is not a GGUF file, or llama.cpp could not load it."""


class CardError(InputFileError):
    """A character card, lorebook, persona or group roster cannot be read or written."""


class ChatFileError(InputFileError):
    """A chat file cannot be read or written."""


class PresetError(InputFileError):
    """A preset file is malformed: bad YAML/JSON, an unknown key, or a bad value."""


class TemplateError(RPContextError):
    """A chat template cannot render the given conversation (for example a refused system role)."""


class BudgetError(RPContextError):
    """The pinned content alone does not fit the window; `breakdown` has tokens per section."""

    def __init__(self, message: str, breakdown: dict[str, int] | None = None) -> None:
        self.breakdown = dict(breakdown or {})
        super().__init__(message)


class BackendError(RPContextError):
    """The inference backend failed to load a model or to generate."""


class GroupError(RPContextError):
    """A group chat cannot be served: a member has no card, or a speaker is not a member."""
