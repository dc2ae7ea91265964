"""rp_context: build roleplay prompts from character cards, fit them to the context window, run them.

The public API is listed here once; submodules are implementation detail.
Importing rp_context never imports Textual, the `tui` app, or llama_cpp (that loads with a model).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .assemble import AssembledPrompt, AssemblySettings, AuthorNote, assemble
from .backends.base import Backend, GenerationResult, PromptInput, ReplyStream, TurnMetrics
from .backends.stops import StopScanner
from .budget import BudgetReport, FittedPrompt, fit_prompt
from .cards import (
    Card,
    CardData,
    CardFile,
    GroupRoster,
    Lorebook,
    LoreEntry,
    Persona,
    WorldInfo,
    load_card,
    load_lorebook,
    load_persona,
    load_roster,
    save_card,
    save_lorebook,
    save_persona,
    save_roster,
)
from .chat import Chat, ChatFile, ChatMessage, load_chat, save_chat
from .detect import FamilyGuess, detect_family
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
from .flatten import FlatPrompt, flatten
from .group import (
    GroupFields,
    GroupMember,
    group_card_fields,
    group_macro,
    group_members,
    member_stop_strings,
    pick_speakers,
    trim_reply,
)
from .macros import MacroContext, expand_macros
from .modelinfo import ModelInfo, model_info
from .models import MODEL_ENV_VAR, check_gguf, default_model_path, resolve_model
from .pipeline import Cast, Setup, build_prompt, load_cast, load_setup, new_chat, read_chat
from .policy import BudgetPolicy
from .presets import (
    BundlePreset,
    ContextPreset,
    InstructPreset,
    SamplerPreset,
    SysPromptPreset,
    load_preset,
)
from .segments import Section, Segment, SegmentKind, Tier
from .session import ChatSession, Turn
from .templates import (
    InstructTemplate,
    JinjaTemplate,
    Message,
    RenderedPrompt,
    get_family,
    list_families,
    render_instruct,
    resolve_template,
)
from .tokens import LlamaTokenizer, TextPart, TiktokenCounter, TokenCounter
from .worldinfo import (
    FiredEntry,
    LoreDecision,
    WorldInfoResult,
    WorldInfoSettings,
    activate_world_info,
)

if TYPE_CHECKING:
    from .backends.llama import LlamaBackend, LlamaLoadOptions
    from .backends.remote import RemoteBackend
    from .backends.turns import run_turns

__version__ = "0.1.0"

_LAZY = {
    "LlamaBackend": "rp_context.backends.llama",
    "LlamaLoadOptions": "rp_context.backends.llama",
    "RemoteBackend": "rp_context.backends.remote",
    "run_turns": "rp_context.backends.turns",
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
    # assembly, budget and the whole pipeline
    "AssembledPrompt",
    "AssemblySettings",
    "AuthorNote",
    "assemble",
    "Segment",
    "SegmentKind",
    "Section",
    "Tier",
    "FlatPrompt",
    "flatten",
    "MacroContext",
    "expand_macros",
    "BudgetPolicy",
    "BudgetReport",
    "FittedPrompt",
    "fit_prompt",
    "Cast",
    "Setup",
    "load_cast",
    "load_setup",
    "new_chat",
    "read_chat",
    "build_prompt",
    "ChatSession",
    "Turn",
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
    "GroupError",
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
    # world info (lorebook activation)
    "WorldInfoSettings",
    "WorldInfoResult",
    "FiredEntry",
    "LoreDecision",
    "activate_world_info",
    # templates and presets
    "InstructTemplate",
    "JinjaTemplate",
    "Message",
    "RenderedPrompt",
    "render_instruct",
    "get_family",
    "list_families",
    "resolve_template",
    "load_preset",
    "InstructPreset",
    "ContextPreset",
    "SysPromptPreset",
    "SamplerPreset",
    "BundlePreset",
    # group chats
    "GroupFields",
    "GroupMember",
    "group_card_fields",
    "group_macro",
    "group_members",
    "member_stop_strings",
    "pick_speakers",
    "trim_reply",
    # cards, lorebooks, personas, rosters, chats
    "Card",
    "CardData",
    "CardFile",
    "Lorebook",
    "LoreEntry",
    "WorldInfo",
    "Persona",
    "GroupRoster",
    "load_card",
    "save_card",
    "load_lorebook",
    "save_lorebook",
    "load_persona",
    "save_persona",
    "load_roster",
    "save_roster",
    "Chat",
    "ChatMessage",
    "ChatFile",
    "load_chat",
    "save_chat",
    # backends
    "Backend",
    "PromptInput",
    "ReplyStream",
    "TurnMetrics",
    "GenerationResult",
    "LlamaBackend",
    "LlamaLoadOptions",
    "RemoteBackend",
    "StopScanner",
    "run_turns",
]
