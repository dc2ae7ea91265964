"""Prompt coercion, sampler overrides, KV state files and the reply stream's lifecycle (no model)."""

from __future__ import annotations

import threading
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import ValidationError

from rp_context.backends.base import (
    GenerationResult,
    PromptInput,
    ReplyStream,
    TurnMetrics,
    as_prompt,
    sampler_with,
)
from rp_context.backends.kvstate import KVStateHeader, KVStateMismatch, read_state, write_state
from rp_context.sampling import SamplerSettings


@dataclass
class Fitted:
    text: str
    token_ids: list[int]
    n_keep: int


def test_as_prompt_accepts_text_ids_and_fitted_objects() -> None:
    assert as_prompt("hi") == PromptInput(text="hi")
    assert as_prompt([1, 2, 3]).ids == (1, 2, 3)
    p = as_prompt(Fitted("abc", [5, 6], 1))
    assert (p.text, p.ids, p.n_keep) == ("abc", (5, 6), 1)
    assert as_prompt(p, n_keep=0).n_keep == 0
    with pytest.raises(TypeError):
        as_prompt(object())


def test_sampler_overrides_apply_and_validate() -> None:
    base = SamplerSettings(temperature=0.5, seed=3)
    s = sampler_with(base, {"max_tokens": 12, "temperature": None})
    assert (s.max_tokens, s.temperature, s.seed) == (12, 0.5, 3)
    with pytest.raises(ValidationError):
        sampler_with(None, {"top_p": 2.0})


def _stream(pieces: list[str]) -> tuple[ReplyStream, list[str]]:
    log: list[str] = []
    holder: list[GenerationResult] = []

    def make(cancel: threading.Event) -> Generator[str, None, None]:
        reason = "cancelled"
        try:
            if cancel.is_set():
                return
            for p in pieces:
                if cancel.is_set():
                    break
                log.append(p)
                yield p
            else:
                reason = "eog"
        finally:
            m = TurnMetrics(backend="t", prompt_tokens=1, reused_tokens=0, evaluated_tokens=1, stop_reason=reason)
            holder.append(GenerationResult(text="".join(log), metrics=m))

    return ReplyStream(make, lambda: holder[0] if holder else None), log


def test_reply_stream_result_after_end_and_after_cancel() -> None:
    s, _ = _stream(["a", "b", "c"])
    with pytest.raises(RuntimeError):
        _ = s.result
    res = s.collect()
    assert (res.text, res.metrics.stop_reason, s.text) == ("abc", "eog", "abc")

    s2, log = _stream(["a", "b", "c"])
    assert next(s2) == "a"
    s2.cancel()
    assert list(s2) == []
    assert (s2.result.text, s2.result.metrics.stop_reason) == ("a", "cancelled")

    s3, log3 = _stream(["a"])
    s3.close()  # closed before it began: a result still exists, nothing ran
    assert log3 == [] and s3.result.metrics.stop_reason == "cancelled"


def test_kv_state_file_roundtrip_and_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "chat.kv"
    header = KVStateHeader(model="m:1:abc", n_ctx=512, type_k=1, type_v=1, tokens=[1, 2, 3])
    write_state(path, header, b"\x00\x01state")
    got, data = read_state(path, {"model": "m:1:abc", "type_k": 1})
    assert got.tokens == [1, 2, 3] and data == b"\x00\x01state"
    with pytest.raises(KVStateMismatch, match="model"):
        read_state(path, {"model": "other:1:abc"})
    path.write_bytes(path.read_bytes()[:30])
    with pytest.raises(KVStateMismatch, match="truncated"):
        read_state(path, {})
    with pytest.raises(KVStateMismatch, match="cannot read"):
        read_state(tmp_path / "missing.kv", {})
    (tmp_path / "junk.kv").write_bytes(b"not a state file")
    with pytest.raises(KVStateMismatch, match="not an rp-context"):
        read_state(tmp_path / "junk.kv", {})
