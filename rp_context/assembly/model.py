"""What assembly takes and gives, and the typed values its stages hand each other.

Settings and the result (`AssemblySettings`, `AuthorNote`, `AssembledPrompt`) are public; the
intermediates (`Request`, `Identity`, `CardTexts`, `ChatTexts`, `LorePlacement`) are what one
stage of `assemble` gives the next, each frozen so no stage changes another's input.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .._types import Mode, Role
from ..cards.model import Card, Lorebook
from ..cards.persona import Persona
from ..cards.roster import GroupRoster
from ..chat import Chat, ChatMessage
from ..chatcontext import ChatIdentity
from ..flatten import FlatMemo, FlatPrompt, flatten
from ..macros import MacroContext
from ..presets.models import ContextPreset, SysPromptPreset
from ..segments import Segment, SegmentKind
from ..templates.model import InstructTemplate
from ..tokens import TokenCounter
from ..worldinfo import FiredEntry, WorldInfoResult, WorldInfoSettings

if TYPE_CHECKING:
    from ..memory import StoredMemory

__all__ = [
    "AuthorNote",
    "AssemblySettings",
    "AssembledPrompt",
    "Request",
    "Identity",
    "CardTexts",
    "ChatTexts",
    "LorePlacement",
    "Fields",
]

Fields = Mapping[str, Sequence[tuple[str, str]]]
"""Card fields (description, personality, scenario, mes_example) as (owners, text) pieces."""


class AuthorNote(BaseModel):
    """The chat's author's note, inserted `depth` messages from the end every `interval` user turns."""

    model_config = ConfigDict(extra="forbid")

    text: str = ""
    depth: int = Field(4, ge=0, le=1000)
    role: Role = "system"
    interval: int = Field(1, ge=0)
    """1: every turn; N: every N-th user message; 0: never."""


class AssemblySettings(BaseModel):
    """Choices SillyTavern keeps in user settings rather than presets."""

    model_config = ConfigDict(extra="forbid")

    prefer_character_prompt: bool = True
    """The card's `system_prompt` replaces the preset's (`{{original}}` inserts the preset's)."""
    prefer_character_jailbreak: bool = True
    """The card's `post_history_instructions` replace the preset's."""
    sysprompt_enabled: bool = True
    author_note: AuthorNote = Field(default_factory=AuthorNote)
    include_examples: bool = True
    """False is SillyTavern's "never include examples" (`{{mesExamples}}` still renders)."""
    world_info: WorldInfoSettings | None = None
    """World-info scan settings; None for SillyTavern's defaults."""
    keyword_lore: Literal["story", "tail"] | None = None
    """Where world-info entries activated by keywords go when their position is before/after the
    card: "story" (SillyTavern: in the story string, at the top) or "tail" (a system turn just
    before the newest message). Entries that come and go turn by turn at the top of the prompt
    make llama.cpp re-read everything after them; in the tail they cost only themselves.
    Constant entries stay in the story string either way. None (unset): the budget policy's
    `keyword_lore` decides (`build_prompt`); `assemble` alone then keeps SillyTavern's "story"."""


@dataclass
class AssembledPrompt:
    """Segments in prompt order plus what flattening and generation need."""

    segments: list[Segment]
    template: InstructTemplate
    user: str
    char: str
    group: bool
    members: list[str]
    mode: Mode
    stop: list[str]
    lore: WorldInfoResult | None = None
    """The world-info scan of this prompt (which entries fired and why); None without lorebooks."""
    warnings: list[str] = field(default_factory=list)
    frozen_changed: bool = False
    """True when new frozen macro values were written into the chat: save it to keep them."""
    memories: list[StoredMemory] = field(default_factory=list)
    """Summaries stored in the chat (oldest first); the budget shows one in the `memory` segment
    when something is evicted."""

    def flatten(self, memo: FlatMemo | None = None) -> FlatPrompt:
        """Render the segments once through the template (`memo`: see `FlatMemo`)."""
        others = [m for m in self.members if m != self.char]
        stop_names = [*others, self.user] if self.mode != "impersonate" else [self.char, *others]
        return flatten(
            self.segments,
            self.template,
            user=self.user,
            char=self.char,
            speaker=self.char if self.mode != "impersonate" else self.user,
            group=self.group,
            mode=self.mode,
            stop_names=stop_names,
            memo=memo,
        )

    @property
    def text(self) -> str:
        return self.flatten().text

    def by_id(self, segment_id: str) -> Segment:
        for seg in self.segments:
            if seg.id == segment_id:
                return seg
        raise KeyError(segment_id)


# ------------------------------------------------------------------------- intermediates
@dataclass(frozen=True, slots=True)
class Request:
    """What `assemble` was asked for, with the defaults filled in."""

    cards: Sequence[Card]
    chat: Chat
    instruct: InstructTemplate
    context: ContextPreset
    sysprompt: SysPromptPreset | None
    persona: Persona | None
    roster: GroupRoster | None
    lorebooks: Sequence[Lorebook]
    settings: AssemblySettings
    mode: Mode
    counter: TokenCounter | None
    max_context: int
    now: datetime | None


@dataclass(frozen=True, slots=True)
class Identity:
    """Stage 1: who is in the chat, who speaks next, and the macro context of card text."""

    who: ChatIdentity
    speaker: str
    card: Card
    """The speaker's card."""
    by_name: Mapping[str, Card]
    joined: bool
    """A joined group: `{{char}}` at the top means the whole cast (llama.cpp's cache), and the
    speaker is named only in the tail (generation header, post-history, author's note)."""
    meta: dict[str, Any]
    """The chat's metadata (empty, and not stored, for a chat without a header)."""
    card_frozen: dict[str, str]
    """Frozen macro values of card and preset text (kept in the chat's metadata)."""
    frozen_before: str
    """The metadata's frozen values before assembly, to tell whether it wrote new ones."""
    clock: Callable[[], datetime]
    warnings: list[str]
    """Where every stage says what it left out or could not read (shared, in order)."""
    memo: dict[tuple[object, ...], str] | None = None
    """The chat's store of pure macro expansions (`MacroContext.memo`, `AssemblyCache.macros`)."""

    @property
    def user(self) -> str:
        return self.who.user

    @property
    def members(self) -> list[str]:
        return list(self.who.members)

    @property
    def group(self) -> bool:
        return len(self.who.members) > 1

    @property
    def story_char(self) -> str:
        """What `{{char}}` means at the top of the prompt."""
        return ", ".join(self.who.members) if self.joined else self.speaker

    def ctx(self, *, char: str | None = None, original: str | None = None) -> MacroContext:
        """The macro context of card and preset text (`char`: whose `{{char}}`, default the top's)."""
        return MacroContext(
            user=self.user,
            char=char or self.story_char,
            group=", ".join(self.who.members) if self.group else "",
            chat_id=self.who.chat_id,
            now=self.clock,
            frozen=self.card_frozen,
            seed=f"{self.who.chat_id}:card",
            warnings=self.warnings,  # macros out of range are left as text and said here
            original=original,
            memo=self.memo,
        )


@dataclass(frozen=True, slots=True)
class CardTexts:
    """Stage 2: the card's and presets' texts with macros expanded."""

    fields: Fields
    persona: str
    """The persona's description when it goes in the story string; else ""."""
    system: str
    system_source: str
    post_history: str
    post_history_source: str


@dataclass(frozen=True, slots=True)
class ChatTexts:
    """Stage 3: the visible messages and the text each one sends (macros, reasoning rules).
    With an `AssemblyCache`, the lists and the mapping are the cache's own: read them during
    this `assemble`, never keep them (the next turn changes them in place)."""

    visible: list[ChatMessage]
    ids: list[str]
    """The visible messages' ids, in order."""
    texts: Mapping[str, str]
    """Message id → the text the prompt carries."""
    prefill: str
    """What goes after the generation header (opens or skips a reasoning block)."""
    frozen_changed: bool
    """A message got new frozen macro values."""


@dataclass(frozen=True, slots=True)
class LorePlacement:
    """Stage 4: the world-info scan, and where its keyword entries go."""

    result: WorldInfoResult | None
    before: list[FiredEntry]
    """`{{wiBefore}}` entries that stay in the story string."""
    after: list[FiredEntry]
    """`{{wiAfter}}` entries that stay in the story string."""
    moved: list[tuple[FiredEntry, SegmentKind]]
    """Keyword entries moved to the tail (`keyword_lore="tail"`), with the kind they keep."""
