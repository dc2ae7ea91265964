"""Banned strings with the real model: a phrase it writes freely never appears once banned."""

from __future__ import annotations

import re
from collections import Counter

import pytest

pytestmark = pytest.mark.model

SEEDS = range(50)


def _run(backend, prompt, sampler) -> tuple[str, object]:
    stream = backend.stream(prompt, sampler=sampler, stop=["<|im_end|>", "\nTess:"])
    shown = "".join(stream)  # what a user watching the stream saw
    return shown, stream.result


def _in(low: str) -> set[str]:
    """Word pairs that occur in `low` exactly as "a b"."""
    words = re.findall(r"[a-z']+", low)
    return {f"{a} {b}" for a, b in zip(words, words[1:], strict=False) if f"{a} {b}" in low}


def _common_bigram(texts: list[str]) -> tuple[str, int]:
    counts: Counter[str] = Counter()
    for t in texts:
        counts.update(_in(t.lower()))
    return counts.most_common(1)[0]


def test_a_phrase_the_model_writes_never_appears_once_banned(backend, chat_prompt, plain) -> None:
    s = plain(temperature=1.0, top_k=40, min_p=0.05, max_tokens=20)
    free = [_run(backend, chat_prompt, s.model_copy(update={"seed": n}))[0] for n in SEEDS]
    phrase, n_free = _common_bigram(free)
    assert n_free >= 10, (phrase, n_free)
    assert len(backend.llama.tokenize(phrase.encode(), add_bos=False)) >= 2  # spans tokens
    for n, before in zip(SEEDS, free, strict=True):
        text, result = _run(backend, chat_prompt, s.model_copy(update={"seed": n, "banned_strings": [phrase.upper()]}))
        assert phrase not in text.lower(), (n, text)
        assert text == result.text
        assert result.metrics.stop_reason in ("eog", "max_tokens", "stop_string"), result.metrics
        at = before.lower().find(phrase)
        if at < 0:
            assert text == before  # no phrase, nothing changed
        else:
            assert text != before and text.startswith(before[: max(0, at - 1)])
            assert text.strip()
