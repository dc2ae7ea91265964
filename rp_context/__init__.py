"""rp_context: build roleplay prompts from character cards, fit them to the context window, run them.

Three ways in, from the most to the least done for you:

1. `ChatSession.open(cards=..., chat_path=..., options=SessionOptions(...))`: a chat with a backend;
   send, reply, swipe, save.
2. `load_cast` + `load_setup` + `build_prompt`: files in, a fitted prompt (text, token ids, report).
3. `assemble` + `fit_prompt`: the same from objects you built yourself.

This module lists the public API once: those entry points, the data types they take and give,
and the errors they raise. Everything else lives in submodules (`rp_context.cards`,
`rp_context.templates`, `rp_context.worldinfo`, ...) for callers who need the parts. Importing
rp_context never imports Textual, the `tui` app, llama_cpp, numpy or httpx: the backends load
on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .assembly import AssembledPrompt, AssemblySettings, AuthorNote, assemble
from .backends.base import Backend, GenerationResult, ReplyStream, TurnMetrics
from .budget import BudgetReport, FittedPrompt, fit_prompt
from .cards import (
    Card,
    CardData,
    CardFile,
    GroupRoster,
    Lorebook,
    LorebookFile,
    LoreEntry,
    Persona,
    PersonaFile,
    RosterFile,
    load_card,
    load_lorebook,
    load_persona,
    load_roster,
    save_card,
    save_lorebook,
    save_persona,
    save_roster,
)
from .chat import Chat, ChatFile, ChatHeader, ChatMessage, load_chat, save_chat
from .errors import (
    BackendError,
    BudgetError,
    CardError,
    ChatFileError,
    GroupError,
    InputFileError,
    ModelFileError,
    PresetError,
    RPContextError,
    TemplateError,
)
from .models import resolve_model
from .pipeline import Cast, PromptCache, Setup, build_prompt, load_cast, load_setup, new_chat
from .policy import BudgetPolicy
from .presets import BundlePreset, ContextPreset, SysPromptPreset, load_preset
from .sampling import SamplerSettings
from .segments import Section, Segment, SegmentKind, Tier
from .session import ChatSession, SessionOptions, Turn
from .templates import InstructTemplate, Message, RenderedPrompt
from .tokens import LlamaTokenizer, TiktokenCounter, TokenCounter
from .worldinfo import WorldInfoResult, WorldInfoSettings

if TYPE_CHECKING:
    from .backends.llama import LlamaBackend, LlamaLoadOptions
    from .backends.remote import RemoteBackend


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rp-context")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"


__version__ = _version()
"""The installed package's version (pyproject.toml's `version`)."""

_LAZY = {
    "LlamaBackend": "rp_context.backends.llama",
    "LlamaLoadOptions": "rp_context.backends.llama",
    "RemoteBackend": "rp_context.backends.remote",
}
"""Names whose modules load heavy packages (llama_cpp and numpy, httpx): imported on first use."""


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "__version__",
    # 1. a chat with a backend
    "ChatSession",
    "SessionOptions",
    "Turn",
    # 2. files in, a fitted prompt out
    "load_cast",
    "load_setup",
    "build_prompt",
    "PromptCache",
    "new_chat",
    "Cast",
    "Setup",
    # 3. from your own objects
    "assemble",
    "fit_prompt",
    "AssembledPrompt",
    "AssemblySettings",
    "AuthorNote",
    "BudgetPolicy",
    "FittedPrompt",
    "BudgetReport",
    "Segment",
    "SegmentKind",
    "Section",
    "Tier",
    # cards, personas, rosters, lorebooks and chats: load_* gives a *File (the object, warnings)
    "Card",
    "CardData",
    "CardFile",
    "load_card",
    "save_card",
    "Persona",
    "PersonaFile",
    "load_persona",
    "save_persona",
    "GroupRoster",
    "RosterFile",
    "load_roster",
    "save_roster",
    "Lorebook",
    "LoreEntry",
    "LorebookFile",
    "load_lorebook",
    "save_lorebook",
    "Chat",
    "ChatHeader",
    "ChatMessage",
    "ChatFile",
    "load_chat",
    "save_chat",
    "WorldInfoSettings",
    "WorldInfoResult",
    # presets: load_preset(name or file, kind) for every kind
    "load_preset",
    "InstructTemplate",
    "ContextPreset",
    "SysPromptPreset",
    "SamplerSettings",
    "BundlePreset",
    "Message",
    "RenderedPrompt",
    # models, token counting and backends
    "resolve_model",
    "TokenCounter",
    "LlamaTokenizer",
    "TiktokenCounter",
    "Backend",
    "LlamaBackend",
    "LlamaLoadOptions",
    "RemoteBackend",
    "ReplyStream",
    "GenerationResult",
    "TurnMetrics",
    # errors: every one is an RPContextError
    "RPContextError",
    "InputFileError",
    "CardError",
    "ChatFileError",
    "PresetError",
    "TemplateError",
    "ModelFileError",
    "BudgetError",
    "BackendError",
    "GroupError",
]
