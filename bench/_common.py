"""Shared pieces of the benchmarks: the deterministic cast and chats, timing and verdict lines.

Not a benchmark itself (the Makefile runs `bench/bench_*.py` only). Every chat comes from
`rp_context.synth.synthetic_chat` with fixed seeds, so two runs measure the same prompts.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from rp_context.budget import FittedPrompt  # noqa: E402
from rp_context.cards import GroupRoster  # noqa: E402
from rp_context.chat import Chat  # noqa: E402
from rp_context.models import resolve_model  # noqa: E402
from rp_context.pipeline import Cast, load_cast  # noqa: E402
from rp_context.segments import Segment, SegmentKind  # noqa: E402
from rp_context.synth import synthetic_chat  # noqa: E402
from rp_context.templates.render import token_ids  # noqa: E402
from rp_context.tokens import LlamaTokenizer, TextPart, common_prefix  # noqa: E402

T = TypeVar("T")

CARDS = REPO / "cards"
PERSONA = CARDS / "sam-ashdown.persona.yaml"
USER = "Sam Ashdown"
# Two more members for the five-character group: copies of shipped cards under new names
# (their text says {{char}}, so the name is all that changes).
EXTRA_MEMBERS = (("Maren Quill", "wren-halloway.json"), ("Elias Fenwick", "tobias-marrow.png"))

# Message lengths in words: characters write a paragraph, the user a line or two.
CHAR_WORDS = (30, 110)
USER_WORDS = (8, 40)


def model_and_tokenizer(model: str | None = None) -> tuple[Path, LlamaTokenizer]:
    path = resolve_model(model)
    return path, LlamaTokenizer(path)


def solo_cast() -> Cast:
    """Wren Halloway one-on-one, with the Sam Ashdown persona."""
    return load_cast([CARDS / "wren-halloway.json"], persona=PERSONA)


def group_cast() -> Cast:
    """Five characters in one join-mode group: the three Skerry cards and two renamed copies."""
    cast = load_cast(
        [CARDS / "wren-halloway.json", CARDS / "tobias-marrow.png", CARDS / "absalom-pike.yaml"],
        persona=PERSONA,
    )
    for name, source in EXTRA_MEMBERS:
        card = load_cast([CARDS / source]).cards[0]
        card.data.name = name
        cast.cards.append(card)
    cast.roster = GroupRoster(
        name="The Skerry Light", members=cast.names, generation_mode="join", activation="list"
    )
    return cast


def make_chat(n_messages: int, names: Sequence[str], *, seed: int, narrator_every: int = 0) -> Chat:
    """A deterministic roleplay-like chat (prose style) between the user and `names`."""
    return synthetic_chat(
        n_messages,
        characters=tuple(names),
        user=USER,
        seed=seed,
        style="prose",
        min_words=CHAR_WORDS[0],
        max_words=CHAR_WORDS[1],
        user_words=USER_WORDS,
        narrator_every=narrator_every,
    )


def prefix_chat(chat: Chat, n: int) -> Chat:
    """The first `n` messages of `chat` (the chat as it stood `len - n` messages ago)."""
    return Chat(header=chat.header, messages=chat.messages[:n])


def next_speaker(chat: Chat, n: int, names: Sequence[str]) -> str:
    """Who speaks next after the first `n` messages: the next character message's author."""
    for m in chat.messages[n:]:
        if m.role == "assistant" and m.name in names:
            return m.name
    return names[0]


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def timed_cpu(fn: Callable[[], T]) -> tuple[T, float, float]:
    """Wall and process CPU seconds: on a shared machine the CPU time is what the work itself costs."""
    t, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t, time.process_time() - c


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def target_line(label: str, measured: str, target: str, ok: bool) -> str:
    return f"  {verdict(ok)}  {label}: {measured}  (target {target})"


def _prefix_tokens(fitted: FittedPrompt, counter: LlamaTokenizer, stop: Callable[[Segment], bool]) -> int:
    """Tokens of `fitted.ids` rendered before the first segment where `stop` holds."""
    segments = {s.id: s for s in fitted.segments}
    parts: list[TextPart] = []
    for span in fitted.flat.spans:
        seg = segments.get(span.segment or "")
        if seg is not None and stop(seg):
            break
        parts.append(span.part)
    ids = token_ids(parts, counter, bos_token=fitted.assembled.template.bos_token)
    # a BPE merge across the cut would make the part's tokens differ; count only what matches
    return common_prefix(ids, fitted.ids)


_TAIL = (SegmentKind.POST_HISTORY, SegmentKind.GENERATION_HEADER, SegmentKind.AUTHOR_NOTE,
         SegmentKind.DEPTH_INJECTION)


def _in_tail(s: object) -> bool:
    """DESIGN's volatile tail: depth injections and lore at depth, the author's note, post-history
    instructions and the generation header, which move with every new message by design."""
    return s.kind in _TAIL or (s.block or "").startswith("inject:")  # type: ignore[attr-defined]


def history_end_tokens(fitted: FittedPrompt, counter: LlamaTokenizer) -> int:
    """Tokens before the post-history instructions and the generation header: the end of the
    history, with its depth injections inside it."""
    return _prefix_tokens(fitted, counter, lambda s: s.kind in (SegmentKind.POST_HISTORY,
                                                                SegmentKind.GENERATION_HEADER))


def stable_prefix_tokens(fitted: FittedPrompt, counter: LlamaTokenizer) -> int:
    """Tokens before the prompt's volatile tail: what the next turn's prompt must repeat for
    llama.cpp to reuse everything but the new text and the tail."""
    return _prefix_tokens(fitted, counter, _in_tail)


def tokens_before_message(fitted: FittedPrompt, counter: LlamaTokenizer, message_id: str) -> int:
    """Tokens before message `message_id` (or before the tail if it is not in the prompt)."""
    return _prefix_tokens(fitted, counter, lambda s: s.message_id == message_id or s.kind in (
        SegmentKind.POST_HISTORY, SegmentKind.GENERATION_HEADER))


_SUMMARY_WORDS = ("keeper lamp storm tide rope lantern stairs gull harbour compass ledger kettle "
                  "tea shutters wind boat coil bell girl old man fog rock light night sea shore").split()


def stand_in_summary(length: int, upto: int) -> str:
    """A summary-sized text (`length` tokens: ~3/4 as many words) naming the message it covers.

    Words drawn afresh for each summary, so no run of it repeats an earlier one: a real summary
    is new text, and the cache must evaluate all of it (a repeated stand-in would let the
    backend keep runs of the old one and flatter the figures)."""
    import random

    rng = random.Random(upto)
    words = max(8, length * 3 // 4)
    return f"Events up to message {upto}: " + " ".join(rng.choice(_SUMMARY_WORDS) for _ in range(words))
