"""What a world-info scan produced: the fired entries per prompt position, and why every entry did or did not fire."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .._types import Role

__all__ = [
    "DecisionStatus",
    "DepthInjection",
    "FiredEntry",
    "LoreDecision",
    "Position",
    "Role",
    "WorldInfoResult",
]

Position = Literal["before", "after", "an_top", "an_bottom", "at_depth", "em_top", "em_bottom"]
"""Where an entry goes: around the character definitions (`before`/`after` the story string's
card fields), around the author's note, into the chat at a depth, or around the examples."""
DecisionStatus = Literal[
    "fired",
    "no_match",
    "secondary_failed",
    "disabled",
    "budget",
    "probability",
    "group_lost",
    "delayed",
    "cooldown",
    "empty",
]


class FiredEntry(BaseModel):
    """An entry that made it into the prompt, with its content ready to insert."""

    model_config = ConfigDict(frozen=True)

    key: str
    """`book.uid`: the entry's identity across books (SillyTavern's `world.uid`)."""
    uid: int | str
    book: str
    comment: str = ""
    content: str
    """After macro expansion and decorator stripping."""
    position: Position
    depth: int | None = None
    """Only for `at_depth`: 0 is after the newest message, N before the N newest."""
    role: Role = "system"
    order: float = 100
    tokens: int = 0
    """What it took from the budget: its content plus the joining newline."""
    outside_budget: bool = False
    """Constant/ignoreBudget entry that fired without using up the budget."""
    unconditional: bool = False
    """Fires whatever the chat says (constant, `@@activate`): its text does not change turn to turn."""


class LoreDecision(BaseModel):
    """Why one entry fired or not, for the inspector."""

    model_config = ConfigDict(frozen=True)

    key: str
    uid: int | str
    book: str
    comment: str = ""
    status: DecisionStatus
    reason: str
    """In words: "key 'dragon' matched in message #3", "budget: 512/500 tokens", "probability roll 73 > 40"."""
    matched_key: str | None = None
    tokens: int = 0
    scan_pass: int = 0
    """The scan pass (1 = the chat itself, 2+ = recursion or min-activations) that decided it; 0 = before scanning."""


class DepthInjection(BaseModel):
    """All at-depth entries of one (depth, role), merged the way SillyTavern injects them."""

    model_config = ConfigDict(frozen=True)

    depth: int
    role: Role
    text: str


class WorldInfoResult(BaseModel):
    """What one activation gave: the fired entries per position and why each entry did or did not
    fire (assembly's `lore`). Every bucket is in SillyTavern's insertion order: ascending `order`,
    the highest nearest the chat. Frozen: the scan builds it once."""

    model_config = ConfigDict(frozen=True)

    before: list[FiredEntry] = Field(default_factory=list)
    after: list[FiredEntry] = Field(default_factory=list)
    an_top: list[FiredEntry] = Field(default_factory=list)
    an_bottom: list[FiredEntry] = Field(default_factory=list)
    examples_top: list[FiredEntry] = Field(default_factory=list)
    examples_bottom: list[FiredEntry] = Field(default_factory=list)
    at_depth: list[FiredEntry] = Field(default_factory=list)
    decisions: list[LoreDecision] = Field(default_factory=list)
    """One per entry of every book, in scan order."""
    budget_tokens: int = 0
    used_tokens: int = 0
    """Tokens taken from the budget (always below `budget_tokens`)."""
    outside_budget_tokens: int = 0
    """Tokens of entries that fired outside the budget (`constant_outside_budget`, `ignoreBudget`)."""
    overflowed: bool = False
    """The budget ran out: at least one entry was left out for it, and recursion stopped."""
    passes: int = 0
    timed_effects: dict[str, Any] = Field(default_factory=dict)
    """The sticky/cooldown state after this scan, in SillyTavern's `chat_metadata.timedWorldInfo`
    layout; store it in the chat's metadata when this prompt is actually generated from."""

    @property
    def fired(self) -> list[FiredEntry]:
        """All fired entries, bucket by bucket."""
        return [
            *self.before, *self.after, *self.an_top, *self.an_bottom,
            *self.examples_top, *self.examples_bottom, *self.at_depth,
        ]

    def before_text(self) -> str:
        """The `{{wiBefore}}` / `{{loreBefore}}` text."""
        return "\n".join(e.content for e in self.before)

    def after_text(self) -> str:
        """The `{{wiAfter}}` / `{{loreAfter}}` text."""
        return "\n".join(e.content for e in self.after)

    def an_top_text(self) -> str:
        return "\n".join(e.content for e in self.an_top)

    def an_bottom_text(self) -> str:
        return "\n".join(e.content for e in self.an_bottom)

    def wrap_authors_note(self, note: str) -> str:
        """The author's note with the AN-top and AN-bottom entries around it, as SillyTavern builds it
        (only on turns where the note is inserted)."""
        text = f"{self.an_top_text()}\n{note}\n{self.an_bottom_text()}"
        if text.startswith("\n"):
            text = text[1:]
        if text.endswith("\n"):
            text = text[:-1]
        return text

    def depth_injections(self) -> list[DepthInjection]:
        """At-depth entries merged per (depth, role), each joined with newlines in bucket order."""
        groups: dict[tuple[int, str], list[str]] = {}
        for entry in self.at_depth:
            groups.setdefault((entry.depth or 0, entry.role), []).append(entry.content)
        return [
            DepthInjection(depth=depth, role=role, text="\n".join(texts))  # type: ignore[arg-type]
            for (depth, role), texts in groups.items()
        ]

    def decision(self, key: str) -> LoreDecision:
        """The decision for entry `book.uid`."""
        for d in self.decisions:
            if d.key == key:
                return d
        raise KeyError(key)
