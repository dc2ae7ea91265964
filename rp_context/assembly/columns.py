"""What `AssemblyCache` compares from turn to turn: the chat's messages as C-level columns, so a
long chat that only grew at its end costs a few passes in C, never a Python loop per message."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import compress, count, repeat
from operator import itemgetter, ne
from typing import Any

from ..chat import ChatMessage, message_edits
from ..reuse import identical_prefix

__all__ = ["Columns", "first_difference"]

_COMPARED = ("id", "name", "role", "text", "hidden")
"""The fields whose change makes a message's text or segment change (a column each: lists of
the values themselves, no object per message, so a turn leaves nothing for the collector)."""
_GETTERS = tuple(map(itemgetter, _COMPARED))
_HIDDEN = _COMPARED.index("hidden")
_EXTRA = itemgetter("extra")


def first_difference(new: list[Any], old: list[Any]) -> int:
    """How many leading items `new` shares with `old`: one C compare when one is a prefix of
    the other (a chat that grew or shrank at its end), else one C scan to the first change."""
    n = min(len(new), len(old))
    if (new if len(new) == n else new[:n]) == (old if len(old) == n else old[:n]):
        return n
    return next(compress(count(), map(ne, new, old)), n)


@dataclass(slots=True)
class Columns:
    """Every message of the chat as the last turn saw it (hidden ones too)."""

    messages: list[ChatMessage] = field(default_factory=list)
    """The message objects (held: `is` against them is exact)."""
    fields: list[dict[str, Any]] = field(default_factory=list)
    """Each message's attribute dict (a pydantic model keeps its fields there)."""
    columns: list[list[Any]] = field(default_factory=list)
    """Per compared field, its value for every message."""

    edits: int = -1
    """`message_edits()` when the columns were read."""

    def update(self, messages: list[ChatMessage]) -> int:
        """Take the chat's messages now; how many leading ones are unchanged since the last
        call (the same objects, with the same id, name, role, text and hidden flag). When no
        message had a field assigned since, the kept ones are as they were: only new messages
        are read."""
        edits = message_edits()
        same = identical_prefix(messages, self.messages)
        if same == len(self.messages) and edits == self.edits and self.columns:
            fields = list(map(vars, messages[same:]))
            self.messages += messages[same:]
            self.fields += fields
            for column, get in zip(self.columns, _GETTERS, strict=True):
                column += map(get, fields)
            return same
        self.edits = edits
        del self.messages[same:], self.fields[same:]
        self.messages += messages[same:]
        self.fields += map(vars, messages[same:])
        columns = [list(map(get, self.fields)) for get in _GETTERS]  # in-place edits show here
        shared = min(map(first_difference, columns, self.columns), default=0)
        self.columns = columns
        return shared

    def holding(self, key: str) -> list[int]:
        """Where a shown (not hidden) message's `extra` has something under `key`, searched in
        C (every shown message when an `extra` is not a dict, for the caller to judge)."""
        hidden = self.columns[_HIDDEN]
        try:
            found: list[int] = list(compress(count(), map(dict.get, map(_EXTRA, self.fields), repeat(key))))
        except TypeError:
            found = list(range(len(hidden)))
        return [i for i in found if not hidden[i]]

