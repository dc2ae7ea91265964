"""The scripted backend: real ReplyStreams from a list of replies, word by word."""

from __future__ import annotations

import threading
from collections.abc import Generator, Sequence
from typing import Any

from rp_context.backends.base import GenerationResult, ReplyStream, TurnMetrics


class ScriptedBackend:
    """Streams the next scripted reply word by word. `gate`, when set, holds the stream after
    `hold_after` pieces until the test opens it, so a test can press Esc mid-reply."""

    name = "scripted"

    def __init__(self, replies: Sequence[str] = (), *, gate: threading.Event | None = None,
                 hold_after: int = 2, reading_gate: threading.Event | None = None) -> None:
        self.replies = list(replies)
        self.gate = gate
        self.hold_after = hold_after
        self.reading_gate = reading_gate
        """When set: report reading a quarter of the prompt, then wait for it before the rest."""
        self.progress_callback: Any = None
        """Used when the caller hands no `on_progress` to `stream`."""
        self.prompts: list[Any] = []
        self.started = threading.Event()

    def stream(self, prompt: Any, *, sampler: Any = None, stop: Sequence[str] = (),
               cancel: threading.Event | None = None, on_progress: Any = None,
               **_: Any) -> ReplyStream:
        self.prompts.append(prompt)
        text = self.replies.pop(0) if self.replies else "(out of script)"
        words = text.split(" ")
        pieces = [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]
        done: dict[str, GenerationResult] = {}
        ids = getattr(prompt, "ids", None) if not isinstance(prompt, list) else prompt
        n_prompt = len(ids) if ids else 0

        def make(ev: threading.Event) -> Generator[str, None, None]:
            out: list[str] = []
            reason = "eog"
            report = on_progress or self.progress_callback
            if self.reading_gate is not None and report is not None:
                total = max(n_prompt, 4)
                report(total // 4, total)
                self.reading_gate.wait(10)
                report(total, total)
            try:
                for i, piece in enumerate(pieces):
                    if i == self.hold_after and self.gate is not None:
                        self.started.set()
                        self.gate.wait(10)
                    if ev.is_set():
                        reason = "cancelled"
                        break
                    out.append(piece)
                    yield piece
            finally:
                done["r"] = GenerationResult(text="".join(out), metrics=TurnMetrics(
                    backend="scripted", prompt_tokens=n_prompt, reused_tokens=n_prompt // 2,
                    evaluated_tokens=n_prompt - n_prompt // 2, generated_tokens=len(out),
                    time_to_first_token_s=0.25, tokens_per_second=42.0, stop_reason=reason))

        return ReplyStream(make, lambda: done.get("r"), cancel)
