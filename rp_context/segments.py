"""The prompt as typed segments: every piece of text knows what it is, whose it is, where it came from.

Assembly produces segments in prompt order; the budget manager changes their `tier` (full →
markers → content → evicted); `flatten` renders them once through a template, and every
character of the output maps back to one segment.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from ._types import Role

__all__ = ["SegmentKind", "Tier", "Segment", "Section", "SECTION_OF"]


class SegmentKind(StrEnum):
    """What a segment holds."""

    SYSTEM_PROMPT = "system_prompt"
    DESCRIPTION = "description"
    PERSONALITY = "personality"
    SCENARIO = "scenario"
    PERSONA = "persona"
    WORLD_INFO_BEFORE = "world_info_before"
    WORLD_INFO_AFTER = "world_info_after"
    STORY_STRING = "story_string"
    """Text of the context template itself (labels, separators, hard-coded model tokens)."""
    EXAMPLE_DIALOGUE = "example_dialogue"
    CHAT_START = "chat_start"
    MEMORY = "memory"
    """The summary of evicted turns (SillyTavern Summarize's `[Summary: ...]`), before history."""
    CHAT_MESSAGE = "chat_message"
    AUTHOR_NOTE = "author_note"
    DEPTH_INJECTION = "depth_injection"
    """The character's note, world info at depth, the persona at depth."""
    POST_HISTORY = "post_history_instructions"
    CONTINUE_TEXT = "continue_text"
    """The open message being continued."""
    GENERATION_HEADER = "generation_header"
    STRUCTURE = "structure"
    """Template markers that belong to no single segment (BOS, turn openers around batches)."""


class Section(StrEnum):
    """Coarse groups of kinds, for the budget bar and reports."""

    SYSTEM = "system"
    CARD = "card"
    LORE = "lore"
    EXAMPLES = "examples"
    HISTORY = "history"
    MEMORY = "memory"
    TAIL = "tail"
    STRUCTURE = "structure"


SECTION_OF: dict[SegmentKind, Section] = {
    SegmentKind.SYSTEM_PROMPT: Section.SYSTEM,
    SegmentKind.STORY_STRING: Section.SYSTEM,
    SegmentKind.DESCRIPTION: Section.CARD,
    SegmentKind.PERSONALITY: Section.CARD,
    SegmentKind.SCENARIO: Section.CARD,
    SegmentKind.PERSONA: Section.CARD,
    SegmentKind.WORLD_INFO_BEFORE: Section.LORE,
    SegmentKind.WORLD_INFO_AFTER: Section.LORE,
    SegmentKind.EXAMPLE_DIALOGUE: Section.EXAMPLES,
    SegmentKind.CHAT_START: Section.SYSTEM,
    SegmentKind.CHAT_MESSAGE: Section.HISTORY,
    SegmentKind.MEMORY: Section.MEMORY,
    SegmentKind.AUTHOR_NOTE: Section.TAIL,
    SegmentKind.DEPTH_INJECTION: Section.TAIL,
    SegmentKind.POST_HISTORY: Section.TAIL,
    SegmentKind.CONTINUE_TEXT: Section.HISTORY,
    SegmentKind.GENERATION_HEADER: Section.TAIL,
    SegmentKind.STRUCTURE: Section.STRUCTURE,
}



class Tier(StrEnum):
    """How much structure a history segment keeps; it only ever moves down, at budget events."""

    FULL = "full"
    MARKERS = "markers"
    """Role markers kept, speaker names folded into the text."""
    CONTENT = "content"
    """Bare text, no role markers."""
    EVICTED = "evicted"


class Segment(BaseModel):
    """One typed piece of the prompt."""

    model_config = ConfigDict(frozen=True)

    id: str
    """Stable id: `msg:<message id>`, `card:<name>:description`, `lore:<book>:<entry>`, ..."""
    kind: SegmentKind
    role: Role | None = None
    """The turn it renders in; None for raw text outside any turn (SillyTavern's story string)."""
    name: str | None = None
    """Speaker shown as `Name:` when the template's names behaviour asks for it."""
    text: str = ""
    special: bool = False
    """True for preset text whose special-token markers count (story-string glue)."""
    pinned: bool = False
    """Never evicted or stripped by the budget manager."""
    tier: Tier = Tier.FULL
    source: str = ""
    """Where the text came from: a file, a card field, a chat message, a preset."""
    message_id: str | None = None
    """For chat messages: the chat message's id."""
    block: str | None = None
    """Segments with the same block id render in one turn (the system block, a batched round)."""
    depth: int | None = None
    """For injections: how many messages from the end it sits."""
    extra: dict[str, str] = Field(default_factory=dict)
