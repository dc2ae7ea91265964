"""Stop strings while streaming: text that might be the start of a stop string is held back.

A stop string can arrive split across tokens (`"\\nUs"` then `"er:"`). Whatever could still
turn into a stop string is withheld until it either completes (and is dropped, with
everything after it) or stops matching (and is released). So no part of a stop string is
ever shown, and nothing shown is ever taken back.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["StopScanner"]


class StopScanner:
    """Feed text pieces in order; get back the text that is safe to show."""

    def __init__(self, stops: Iterable[str]) -> None:
        self.stops = tuple(dict.fromkeys(s for s in stops if s))
        self._held = ""
        self.stopped: str | None = None
        """The stop string that ended the text, once one has."""

    def feed(self, piece: str) -> str:
        """Add `piece`; return what can be shown now (empty once a stop string has matched)."""
        if self.stopped is not None:
            return ""
        buf = self._held + piece
        # The reply ends where the first stop string completes (earliest end; on a tie, the
        # earliest start), whatever the chunking of the text.
        first, best = -1, (0, 0)
        for stop in self.stops:
            i = buf.find(stop)
            if i >= 0 and (first < 0 or (i + len(stop), i) < best):
                first, best, self.stopped = i, (i + len(stop), i), stop
        if first >= 0:
            self._held = ""
            return buf[:first]
        keep = self._partial_len(buf)
        self._held = buf[len(buf) - keep :] if keep else ""
        return buf[: len(buf) - keep]

    def flush(self) -> str:
        """At the end of the reply: release held text (it never became a stop string)."""
        held, self._held = self._held, ""
        return "" if self.stopped is not None else held

    @property
    def held(self) -> str:
        """Text withheld because it may be the start of a stop string."""
        return self._held

    def _partial_len(self, buf: str) -> int:
        """Length of the longest suffix of `buf` that is a proper prefix of some stop string."""
        best = 0
        for stop in self.stops:
            for n in range(min(len(stop) - 1, len(buf)), best, -1):
                if buf.endswith(stop[:n]):
                    best = n
                    break
        return best
