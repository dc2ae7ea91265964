"""Sticky and cooldown timed effects, stored per chat as SillyTavern stores them.

The state is `{"sticky": {key: effect}, "cooldown": {key: effect}}` with
`effect = {"hash", "start", "end", "protected"}` (SillyTavern's `chat_metadata.timedWorldInfo`),
keyed by `book.uid`. Reading never changes the caller's state; `after()` returns the new one.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from .entries import PreparedEntry

__all__ = ["TimedEffects"]

_TYPES = ("sticky", "cooldown")


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


class TimedEffects:
    """Which entries are sticky or cooling down at this chat length."""

    def __init__(self, stored: Mapping[str, Any] | None, entries: list[PreparedEntry], chat_length: int) -> None:
        self.chat_length = chat_length
        self.state: dict[str, dict[str, dict[str, Any]]] = {t: {} for t in _TYPES}
        if isinstance(stored, Mapping):
            for t in _TYPES:
                records = stored.get(t)
                if isinstance(records, Mapping):
                    self.state[t] = {
                        str(k): copy.deepcopy(dict(v)) for k, v in records.items() if isinstance(v, Mapping)
                    }
        self.active: dict[str, dict[str, dict[str, Any]]] = {t: {} for t in _TYPES}
        by_hash = {e.hash: e for e in entries} if any(self.state.values()) else {}
        for t in _TYPES:
            for key, effect in list(self.state[t].items()):
                entry = by_hash.get(str(effect.get("hash")))
                if chat_length <= _number(effect.get("start")) and not effect.get("protected"):
                    del self.state[t][key]  # the chat did not advance (a swipe or regenerate)
                    continue
                if entry is None:
                    if chat_length >= _number(effect.get("end")):
                        del self.state[t][key]
                    continue
                if not getattr(entry, t):
                    del self.state[t][key]
                    continue
                if chat_length >= _number(effect.get("end")):
                    del self.state[t][key]
                    if t == "sticky" and entry.cooldown:
                        cooldown = self._effect("cooldown", entry, protected=True)
                        self.state["cooldown"][entry.key] = cooldown
                        self.active["cooldown"][entry.hash] = cooldown
                    continue
                self.active[t][entry.hash] = effect

    def _effect(self, kind: str, entry: PreparedEntry, *, protected: bool) -> dict[str, Any]:
        return {
            "hash": entry.hash,
            "start": self.chat_length,
            "end": self.chat_length + int(getattr(entry, kind)),
            "protected": protected,
        }

    def is_active(self, kind: str, entry: PreparedEntry) -> bool:
        active = self.active.get(kind)
        if not active:  # nothing to look up: the entry's hash is not needed
            return False
        return entry.hash in active

    def describe(self, kind: str, entry: PreparedEntry) -> str:
        effect = self.active[kind][entry.hash]
        return f"active until the chat has {int(_number(effect.get('end')))} messages"

    def after(self, activated: list[PreparedEntry]) -> dict[str, Any]:
        """The state to store once this scan's prompt is used: new sticky/cooldown effects added."""
        state = copy.deepcopy(self.state)
        for entry in activated:
            for t in _TYPES:
                if getattr(entry, t) and entry.key not in state[t]:
                    state[t][entry.key] = self._effect(t, entry, protected=False)
        return state
