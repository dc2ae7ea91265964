"""Banned phrases (KoboldCpp's "phrase banning", "anti-slop"): a banned string never appears.

Tokens are decoded as they come. Text that could still become a banned phrase is held back, a
whole token at a time, like the stop scanner holds back a possible stop string. When a banned
phrase completes, generation backs up to the token where it began: the caller drops the
tokens from there, the sampler chain and the decoder go back to their state at that point, and
that token is excluded at that position, so the next draw takes another continuation. Matching
ignores case. Nothing shown is ever taken back, because the phrase's first token was held.
"""

from __future__ import annotations

import bisect
import codecs
from collections.abc import Sequence
from typing import Any, Protocol

__all__ = ["PhraseGuard", "fold", "MAX_REWINDS"]

MAX_REWINDS = 256
"""Backtracks allowed in one reply; past this the reply ends before the phrase (never shown)."""


def fold(text: str) -> str:
    """Lower case, one character for one (so offsets in the folded text are offsets in `text`)."""
    out = text.lower()
    if len(out) == len(text):
        return out
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


class Chain(Protocol):
    def sample(self, ctx: Any, idx: int = -1, exclude: Sequence[int] = ()) -> int: ...
    def snapshot(self) -> Any: ...
    def restore(self, snap: Any) -> None: ...


class PhraseGuard:
    """Sits between the sampler and the text: `sample` draws, `push` decodes and filters.

    Without phrases it only decodes (no snapshots, nothing held).
    """

    def __init__(self, phrases: Sequence[str], chain: Chain | None = None) -> None:
        self.phrases = tuple(dict.fromkeys(fold(p) for p in phrases if p))
        self.chain = chain
        self.tokens: list[int] = []
        self._dec = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._text = ""
        self._ends: list[int] = []  # len(self._text) after each token
        self._dec_states: list[tuple[bytes, int]] = []  # decoder state before each token
        self._snaps: dict[int, Any] = {}  # chain state before sampling each held position
        self._excluded: dict[int, set[int]] = {}
        self._released = 0  # chars shown; always a token boundary
        self.rewinds = 0
        """How many times a banned phrase made generation back up."""
        self.exhausted = False
        """True once MAX_REWINDS was passed: the reply must end (the phrase is not shown)."""

    # -- sampling -----------------------------------------------------------------------------

    def sample(self, ctx: Any, idx: int = -1) -> int:
        """Draw the next token, with any continuation banned at this position excluded."""
        assert self.chain is not None
        pos = len(self.tokens)
        if self.phrases and pos not in self._snaps:
            self._snaps[pos] = self.chain.snapshot()
        return int(self.chain.sample(ctx, idx, sorted(self._excluded.get(pos, ()))))

    # -- text -----------------------------------------------------------------------------

    def push(self, tok: int, piece: bytes) -> tuple[str, int | None]:
        """Add a sampled token. Returns (text safe to show now, None), or ("", k) when a banned
        phrase completed: keep only the first k reply tokens and sample position k again."""
        self._dec_states.append(self._dec.getstate())
        self.tokens.append(tok)
        self._text += self._dec.decode(piece)
        self._ends.append(len(self._text))
        if not self.phrases:
            return self._release(len(self._text)), None
        held = fold(self._text[self._released :])
        hit = self._first_hit(held)
        if hit is not None:
            return "", self._rewind(self._token_at(self._released + hit))
        keep = self._partial_len(held)
        if keep == 0:
            return self._release(len(self._text)), None
        start = self._token_at(len(self._text) - keep)
        return self._release(self._start(start)), None

    def flush(self) -> str:
        """At the end of the reply: the held text and any bytes the decoder kept."""
        self._text += self._dec.decode(b"", final=True)
        return self._release(len(self._text))

    @property
    def held(self) -> str:
        """Text withheld because it may be the start of a banned phrase."""
        return self._text[self._released :]

    # -- internals --------------------------------------------------------------------------

    def _release(self, upto: int) -> str:
        out = self._text[self._released : upto]
        self._released = max(self._released, upto)
        first_held = self._token_at(self._released) if self._released < len(self._text) else len(self.tokens)
        for pos in [p for p in self._snaps if p < first_held]:
            del self._snaps[pos]
        return out

    def _start(self, k: int) -> int:
        """Character offset where token k's text begins."""
        return self._ends[k - 1] if k > 0 else 0

    def _token_at(self, offset: int) -> int:
        """The token whose text holds character `offset`; earlier tokens that produced no text
        (a split UTF-8 character) belong to it, so backing up to it drops their bytes too."""
        k = bisect.bisect_right(self._ends, offset)
        while k > 0 and self._start(k - 1) == self._start(k) and self._start(k) >= self._released:
            k -= 1
        return k

    def _first_hit(self, held: str) -> int | None:
        hits = [i for i in (held.find(p) for p in self.phrases) if i >= 0]
        return min(hits) if hits else None

    def _partial_len(self, held: str) -> int:
        """Longest suffix of `held` that is a proper prefix of a banned phrase."""
        best = 0
        for p in self.phrases:
            for n in range(min(len(p) - 1, len(held)), best, -1):
                if held.endswith(p[:n]):
                    best = n
                    break
        return best

    def _rewind(self, k: int) -> int | None:
        """Back up to position k: exclude the token drawn there, restore the chain and decoder."""
        self.rewinds += 1
        if self.rewinds > MAX_REWINDS:
            self.exhausted = True
            return None
        bad = self.tokens[k]
        for pos in [p for p in self._excluded if p > k]:
            del self._excluded[pos]
        self._excluded.setdefault(k, set()).add(bad)
        for pos in [p for p in self._snaps if p > k]:
            del self._snaps[pos]
        if self.chain is not None:
            self.chain.restore(self._snaps[k])
        self._dec.setstate(self._dec_states[k])
        del self.tokens[k:], self._ends[k:], self._dec_states[k:]
        self._text = self._text[: self._start(k)]
        return k
