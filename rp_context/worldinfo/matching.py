"""Key matching against the scan buffer, the way SillyTavern's `WorldInfoBuffer` does it.

The buffer is the newest messages (newest first), then injected prompts, then the recursion
text, each started by `\\x01` and joined by `\\n`. A `/regex/flags` key is tested as written;
other keys are lower-cased with the text unless case-sensitive, and a single-word key must
stand between non-word characters (JavaScript's ASCII `\\W`) when whole-word matching is on.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol

import regex

__all__ = ["REGEX_TIMEOUT_S", "ScanBuffer", "ScanMessage", "KeyMatcher", "parse_regex_key"]

REGEX_TIMEOUT_S = 0.25
"""How long one regex key may search the scan buffer; past it the key counts as not matching and
the entry's decision says so (a pathological key like `/(a+)+$/` cannot hang a render)."""

MATCHER = "\x01"
JOINER = "\n" + MATCHER

_JS_REGEX = re.compile(r"/([\s\S]+?)/([gimsuy]*)")
_UNESCAPED_SLASH = re.compile(r"(^|[^\\])/")
_JS_NAMED_GROUP = re.compile(r"\(\?<(?![=!])")


class ScanMessage(Protocol):
    """A chat message as the scan sees it (oldest first in the chat)."""

    @property
    def name(self) -> str: ...

    @property
    def text(self) -> str: ...


@lru_cache(maxsize=4096)
def parse_regex_key(key: str) -> regex.Pattern[str] | None:
    """A `/pattern/flags` key as a compiled pattern; None when it is not one (or does not compile)."""
    m = _JS_REGEX.fullmatch(key)
    if not m:
        return None
    pattern, flags = m.groups()
    if _UNESCAPED_SLASH.search(pattern):
        return None
    pattern = _JS_NAMED_GROUP.sub("(?P<", pattern.replace("\\/", "/", 1))
    bits = regex.V0
    if "i" in flags:
        bits |= regex.IGNORECASE
    if "m" in flags:
        bits |= regex.MULTILINE
    if "s" in flags:
        bits |= regex.DOTALL
    return _compile(pattern, bits)


def _compile(pattern: str, flags: int) -> regex.Pattern[str] | None:
    """A regex with `re`'s syntax, compiled by the `regex` package (it can time out a search)."""
    try:
        re.compile(pattern, flags & (re.IGNORECASE | re.MULTILINE | re.DOTALL))
        return regex.compile(pattern, flags)
    except (re.error, regex.error, RecursionError, OverflowError, ValueError):
        return None


_WORD_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")


def _whole_word_in(haystack: str, key: str) -> bool:
    """`(?:^|\\W)key(?:$|\\W)` with JavaScript's ASCII `\\W`, without compiling a regex per key."""
    start = 0
    end = len(haystack)
    while (i := haystack.find(key, start)) >= 0:
        j = i + len(key)
        if (i == 0 or haystack[i - 1] not in _WORD_CHARS) and (j == end or haystack[j] not in _WORD_CHARS):
            return True
        start = i + 1
    return False


@lru_cache(maxsize=16)
def _lower(text: str) -> str:
    return text.lower()


@lru_cache(maxsize=1024)
def _plain_regex(key: str, case_sensitive: bool) -> regex.Pattern[str] | None:
    return _compile(key, regex.V0 | (0 if case_sensitive else regex.IGNORECASE))


@dataclass(frozen=True)
class KeyMatcher:
    """One entry's matching options (its own overrides already merged with the global settings)."""

    case_sensitive: bool
    whole_words: bool
    use_regex: bool = False
    """V3 `use_regex`: plain keys are regular expressions too."""
    timed_out: set[str] | None = field(default=None, compare=False, hash=False)
    """Where regex keys that ran past REGEX_TIMEOUT_S are noted (and then skipped: no match)."""

    def matches(self, haystack: str, key: str) -> bool:
        pattern = parse_regex_key(key)
        if pattern is None and self.use_regex:
            pattern = _plain_regex(key, self.case_sensitive)
        if pattern is not None:
            if self.timed_out is not None and key in self.timed_out:
                return False
            try:
                return pattern.search(haystack, timeout=REGEX_TIMEOUT_S) is not None
            except TimeoutError:
                if self.timed_out is not None:
                    self.timed_out.add(key)
                return False
        if not self.case_sensitive:
            haystack = _lower(haystack)
            key = key.lower()
        if self.whole_words and len(key.split()) <= 1:
            return _whole_word_in(haystack, key)
        return key in haystack


@dataclass
class ScanBuffer:
    """The text one scan looks at: recent messages, injected prompts and recursion text.

    Messages are read from the chat newest first, and only as far back as a scan asks: a long
    chat costs what its scan depth reads."""

    chat: Sequence[ScanMessage]
    """The chat, oldest first."""
    base_depth: int
    include_names: bool = False
    """Scan `Name: message` rather than the message alone."""
    injections: list[str] = field(default_factory=list)
    recursion: list[str] = field(default_factory=list)
    skew: int = 0
    """How far min-activations has widened the global depth."""
    _newest: list[tuple[int, str]] = field(default_factory=list, repr=False)
    """(chat index, text) newest first, as far back as read so far."""

    @classmethod
    def from_chat(
        cls, chat: Sequence[ScanMessage], *, depth: int, include_names: bool, injections: Sequence[str] = ()
    ) -> ScanBuffer:
        return cls(chat, depth, include_names, [t for t in injections if t])

    @property
    def depth(self) -> int:
        return self.base_depth + self.skew

    def newest(self, depth: int) -> list[tuple[int, str]]:
        """The newest `depth` messages as (chat index, scanned text), newest first."""
        read, n = self._newest, len(self.chat)
        while len(read) < min(depth, n):
            index = n - 1 - len(read)
            m = self.chat[index]
            text = f"{m.name}: {m.text}" if self.include_names and m.name else m.text
            read.append((index, text.strip()))
        return read[:depth]

    def segments(self, scan_depth: int | None, *, with_recursion: bool) -> list[tuple[str, str]]:
        """(label, text) pieces in buffer order; empty when the effective depth is 0."""
        depth = self.depth if scan_depth is None else scan_depth
        if depth <= 0:
            return []
        out = [(f"message #{index}", text) for index, text in self.newest(depth)]
        if not out:
            out = [("chat", "")]
        out += [("injected prompt", text) for text in self.injections]
        if with_recursion:
            out += [(f"recursion pass {i + 1}", text) for i, text in enumerate(self.recursion)]
        return out

    @staticmethod
    def join(segments: list[tuple[str, str]]) -> str:
        if not segments:
            return ""
        return MATCHER + JOINER.join(text for _, text in segments)

    @staticmethod
    def locate(segments: list[tuple[str, str]], key: str, matcher: KeyMatcher) -> str:
        """Where a key that matched the whole buffer was found, for the inspector."""
        for label, text in segments:
            if matcher.matches(MATCHER + text, key):
                return label
        return "the scanned text"
