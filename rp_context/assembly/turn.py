"""The visible messages of the last turn, kept by `AssemblyCache` and cut back to where the chat
changed, and the texts they send as a mapping over them (no dict of every message per turn)."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field
from itertools import count

from ..chat import ChatMessage
from ..reasoning import ReasoningFormat
from ..segments import Segment

__all__ = ["Turn", "TurnTexts"]


@dataclass(slots=True)
class Turn:
    """Per visible message: the message, its id, its text after macros (`raw`) and the text it
    sends (`sent`: inline reasoning blocks out of replies), and its segment."""

    visible: list[ChatMessage] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)
    position: dict[str, int] | None = field(default_factory=dict)
    """Id → visible position; None while an id repeats."""
    hidden_at: list[int] = field(default_factory=list)
    """Where the hidden messages are in the whole chat."""
    macros: list[int] = field(default_factory=list)
    """The visible positions of messages with macros (expanded every turn)."""
    fmt: ReasoningFormat | None = None
    changed: bool = False
    """This turn wrote new frozen macro values into a message."""
    segments: list[Segment] = field(default_factory=list)
    fresh: int = 0
    """How many leading `segments` still match their messages."""
    user: str = ""
    """The user's name the segments were made with."""
    overridden: list[int] = field(default_factory=list)
    """Positions whose segment carried a text the reasoning rules changed (`TurnTexts.changed`)."""

    def truncate(self, shared: int) -> None:
        """Keep what the first `shared` messages of the chat gave; forget the rest."""
        hidden = bisect_left(self.hidden_at, shared)
        keep = shared - hidden
        if self.position is not None:
            for mid in self.ids[keep:]:
                del self.position[mid]
        del self.hidden_at[hidden:], self.visible[keep:], self.ids[keep:], self.raw[keep:], self.sent[keep:]
        self.macros = [i for i in self.macros if i < keep]
        self.fresh = min(self.fresh, keep)

    def append(self, m: ChatMessage, raw: str, sent: str) -> None:
        """A visible message after the kept ones."""
        if self.position is not None:
            if m.id in self.position:
                self.position = None
            else:
                self.position[m.id] = len(self.ids)
        self.visible.append(m)
        self.ids.append(m.id)
        self.raw.append(raw)
        self.sent.append(sent)

    def view(self) -> TurnTexts | None:
        """The texts sent, by id; None when an id repeats."""
        if self.position is None:  # try again: the repeat may be gone
            position = dict(zip(self.ids, count()))
            if len(position) < len(self.ids):
                return None
            self.position = position
        return TurnTexts(self.position, self.ids, self.sent)


class TurnTexts(MutableMapping[str, str]):
    """Message id → the text it sends this turn, read from the turn's lists; what the reasoning
    rules write (`prepare_prompt`) is kept apart, so the turn's lists stay as they were.
    Valid until the next turn's `AssemblyCache.texts`."""

    def __init__(self, position: dict[str, int], ids: list[str], sent: list[str]) -> None:
        self._position = position
        self._ids = ids
        self._sent = sent
        self._over: dict[str, str] = {}

    def __getitem__(self, mid: str) -> str:
        hit = self._over.get(mid)
        return hit if hit is not None else self._sent[self._position[mid]]

    def __setitem__(self, mid: str, text: str) -> None:
        self._position[mid]  # noqa: B018 - only the turn's messages have texts (KeyError)
        self._over[mid] = text

    def __delitem__(self, mid: str) -> None:
        raise TypeError("a message's text can be replaced, not removed")

    def __iter__(self) -> Iterator[str]:
        return iter(self._position)

    def __len__(self) -> int:
        return len(self._position)

    @property
    def position(self) -> dict[str, int]:
        """Id → visible position."""
        return self._position

    def at(self, i: int) -> str:
        """The text of visible message `i`."""
        sent = self._sent[i]
        return self._over.get(self._ids[i], sent) if self._over else sent

    def changed_at(self) -> list[int]:
        """The positions whose text was replaced."""
        return [self._position[mid] for mid in self._over]
