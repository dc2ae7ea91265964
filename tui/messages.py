"""Typed messages the app's thread workers post; screens and the app handle them on the UI thread.

Workers never touch widgets: generation posts what a turn did (started, a chunk of text, ended,
failed), loading posts what it opened, listed or imported, or why not. Each message carries the
data its handler needs, so a handler reads nothing the worker is still changing. None bubbles: a
worker posts to the one screen (or the app) that handles it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:
    from rp_context.budget import FittedPrompt
    from rp_context.session import ChatSession, Turn

    from .config import Settings
    from .library import Entry, ImportResult
    from .sessions import ChatSpec

__all__ = [
    "CastListed",
    "FileImported",
    "LoadFailed",
    "PreviewFailed",
    "PreviewReady",
    "ReadingProgress",
    "RepliesDone",
    "ReplyChunk",
    "ReplyEnded",
    "ReplyFailed",
    "ReplyStarted",
    "ReplyThinking",
    "SessionOpened",
]


# -- generation (posted to the chat screen) ------------------------------------------------------
@dataclass
class ReplyStarted(Message, bubble=False):
    """A turn began: the screen shows where its text will stream."""

    turn: Turn


@dataclass
class ReplyChunk(Message, bubble=False):
    """Streamed text of the current turn (several tokens coalesced), in order."""

    turn: Turn
    text: str


@dataclass
class ReplyThinking(Message, bubble=False):
    """A reasoning model is in its thinking block; `chars` of reasoning so far."""

    speaker: str
    chars: int


@dataclass
class ReadingProgress(Message, bubble=False):
    """The backend has read `done` of `total` prompt tokens."""

    done: int
    total: int


@dataclass
class ReplyEnded(Message, bubble=False):
    """A turn finished (to its end, its limit, or stopped); the chat is saved."""

    turn: Turn


@dataclass
class ReplyFailed(Message, bubble=False):
    """A turn could not run. `expected`: bad input the library reported (a notice); otherwise an
    unexpected error, which the handler also logs."""

    error: BaseException
    expected: bool


@dataclass
class RepliesDone(Message, bubble=False):
    """The generation worker is finished with all its turns."""


# -- budget preview (posted to the chat screen) --------------------------------------------------
@dataclass
class PreviewReady(Message, bubble=False):
    """The prompt the next turn would send, fitted; `epoch` says which chat state it is for."""

    fitted: FittedPrompt
    epoch: int


@dataclass
class PreviewFailed(Message, bubble=False):
    """The next prompt cannot be fitted (why, in one line)."""

    reason: str


# -- loading (posted to the app) ------------------------------------------------------------------
@dataclass
class SessionOpened(Message, bubble=False):
    """A chat opened in a worker, ready to be installed."""

    spec: ChatSpec
    session: ChatSession
    settings: Settings
    on_ok: Callable[[], None] | None = None


@dataclass
class CastListed(Message, bubble=False):
    """The cards and groups a picker offers, listed in a worker."""

    entries: list[Entry] = field(default_factory=list)


@dataclass
class FileImported(Message, bubble=False):
    """A file was checked and copied into the user folder."""

    result: ImportResult


@dataclass
class LoadFailed(Message, bubble=False):
    """Opening, listing or importing failed; `what` names the job. `expected`: the library
    reported bad input (a notice); otherwise an unexpected error, also logged."""

    what: str
    error: BaseException
    expected: bool
