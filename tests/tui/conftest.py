"""A scripted backend (real ReplyStreams from a list of replies) and apps on the real ChatSession."""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Sequence
from pathlib import Path
from typing import Any

import pytest

from rp_context.backends.base import GenerationResult, ReplyStream, TurnMetrics
from rp_context.paths import bundled_dir


class ScriptedBackend:
    """Streams the next scripted reply word by word. `gate`, when set, holds the stream after
    `hold_after` pieces until the test opens it, so a test can press Esc mid-reply."""

    name = "scripted"

    def __init__(self, replies: Sequence[str] = (), *, gate: threading.Event | None = None,
                 hold_after: int = 2) -> None:
        self.replies = list(replies)
        self.gate = gate
        self.hold_after = hold_after
        self.prompts: list[Any] = []
        self.started = threading.Event()

    def stream(self, prompt: Any, *, sampler: Any = None, stop: Sequence[str] = (),
               cancel: threading.Event | None = None, **_: Any) -> ReplyStream:
        self.prompts.append(prompt)
        text = self.replies.pop(0) if self.replies else "(out of script)"
        words = text.split(" ")
        pieces = [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]
        done: dict[str, GenerationResult] = {}
        n_prompt = len(prompt) if isinstance(prompt, list) else 0

        def make(ev: threading.Event) -> Generator[str, None, None]:
            out: list[str] = []
            reason = "eog"
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


@pytest.fixture(autouse=True)
def data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own empty user data folder (settings, chats, imported cards)."""
    home = tmp_path / "home"
    monkeypatch.setenv("RP_CONTEXT_HOME", str(home))
    return home


@pytest.fixture
def cards_dir() -> Path:
    return bundled_dir("cards")


@pytest.fixture
def make_app(tiktoken_counter: Any) -> Callable[..., Any]:
    """An RPChatApp on the real ChatSession with the scripted backend and the tiktoken counter."""
    from tui.app import RPChatApp
    from tui.config import Settings
    from tui.sessions import ChatSpec

    def make(backend: ScriptedBackend, **spec: Any) -> RPChatApp:
        return RPChatApp(spec=ChatSpec(**spec), settings=Settings(), backend=backend,
                         counter=tiktoken_counter, save_settings_file=False, cursor_blink=False)

    return make
