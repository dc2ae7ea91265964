"""What every backend shares: the prompt it runs, the per-turn metrics, and the reply stream.

A backend turns a fitted prompt (token ids, or text for servers that take only text) into a
stream of reply text. The stream can be cancelled mid-reply; once it ends, by any route, it
carries a `GenerationResult` with the reply and the turn's `TurnMetrics`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from ..errors import BackendError
from ..sampling import SamplerSettings

__all__ = [
    "StopReason",
    "ProgressCallback",
    "ContextSizeExceeded",
    "PromptInput",
    "as_prompt",
    "TurnMetrics",
    "GenerationResult",
    "ReplyStream",
    "Backend",
    "sampler_with",
]

StopReason = Literal[
    "eog", "stop_string", "max_tokens", "context_full", "cancelled", "error", "banned_phrase"
]
"""Why a reply ended: the model's end-of-generation token, a stop string, the length limit,
a full context window, the caller cancelled, the backend failed, or a banned phrase kept
coming back (after `phrasebans.MAX_REWINDS` retries; the phrase is not shown)."""

ProgressCallback = Callable[[int, int], None]
"""Called while a prompt is read: `(processed, total)` tokens of the part not already cached.

Both backends call it (llama.cpp in process between batches, llama.cpp's server from its
`prompt_progress` events), ending with `(total, total)`. It runs on the thread that iterates
the stream; keep it short."""


class ContextSizeExceeded(BackendError):
    """The prompt is longer than the context window (of the model, or of one server slot)."""

    def __init__(self, n_prompt_tokens: int, n_ctx: int, where: str = "") -> None:
        self.n_prompt_tokens = n_prompt_tokens
        self.n_ctx = n_ctx
        prefix = f"{where}: " if where else ""
        super().__init__(f"{prefix}prompt of {n_prompt_tokens} tokens does not fit the "
                         f"{n_ctx}-token context")


class PromptInput(BaseModel):
    """A prompt as a backend receives it: exact token ids, its text, or both.

    In-process backends run `ids` (no re-tokenization drift, no double BOS); servers that take
    only text get `text`. `n_keep` is the length of the pinned prefix in tokens, which a
    llama.cpp server keeps when it must shift its own context.
    """

    model_config = ConfigDict(frozen=True)

    ids: tuple[int, ...] | None = None
    text: str | None = None
    n_keep: int = Field(0, ge=0)


def as_prompt(prompt: PromptInput | str | Sequence[int] | Any, *, n_keep: int | None = None) -> PromptInput:
    """Coerce text, a list of token ids, a PromptInput, or any object with `ids`/`token_ids` and `text`."""
    if isinstance(prompt, PromptInput):
        p = prompt
    elif isinstance(prompt, str):
        p = PromptInput(text=prompt)
    elif isinstance(prompt, Sequence) and not isinstance(prompt, bytes | bytearray):
        p = PromptInput(ids=tuple(int(t) for t in prompt))
    else:
        ids = getattr(prompt, "ids", None)
        if ids is None:
            ids = getattr(prompt, "token_ids", None)
        text = getattr(prompt, "text", None)
        if ids is None and text is None:
            raise TypeError(f"not a prompt: {type(prompt).__name__}")
        p = PromptInput(
            ids=tuple(int(t) for t in ids) if ids is not None else None,
            text=text if isinstance(text, str) else None,
            n_keep=int(getattr(prompt, "n_keep", 0) or 0),
        )
    if n_keep is not None:
        p = p.model_copy(update={"n_keep": n_keep})
    return p


class TurnMetrics(BaseModel):
    """What one turn cost: how much of the prompt the cache saved, and how fast the reply came.

    `reused_tokens + evaluated_tokens == prompt_tokens` when both are known; servers that do not
    report their cache leave them None.
    """

    backend: str
    """Which backend ran the turn, e.g. `llama.cpp` or `remote:llama-cpp-python`."""
    prompt_tokens: int | None
    """Tokens in the prompt (exact for in-process runs; from the server or /tokenize otherwise)."""
    reused_tokens: int | None
    """Prompt tokens whose KV cache entries were kept from earlier turns (not re-processed)."""
    evaluated_tokens: int | None
    """Prompt tokens processed this turn (prompt_tokens - reused_tokens)."""
    shifted_tokens: int = 0
    """Tokens removed from the middle of the cache by a context shift this turn (approximate)."""
    generated_tokens: int = 0
    """Tokens sampled for the reply, including any that formed a stop string."""
    time_to_first_token_s: float | None = None
    """Seconds from the call to the first sampled token (includes prompt processing)."""
    prompt_eval_s: float | None = None
    """Seconds spent processing the prompt (in-process only)."""
    generation_s: float = 0.0
    """Seconds from the first token to the end of the reply."""
    tokens_per_second: float | None = None
    """Generation speed after the first token; None with fewer than two tokens."""
    stop_reason: StopReason = "eog"
    checkpoint_tokens: int = 0
    """Tokens restored from a state checkpoint this turn (models whose cache cannot be cut
    partially, or when checkpoints are forced); 0 when the prefix was kept as is or not at all."""
    restored_tokens: int = 0
    """Tokens the cache held from a saved state (disk or server slot file) restored before this
    turn; 0 when nothing was restored since the previous turn."""
    counts_exact: bool = True
    """False when token counts are the server's or chunk counts rather than our own."""


class GenerationResult(BaseModel):
    """A finished (or cancelled) reply: the text shown to the user and the turn's metrics."""

    text: str
    token_ids: list[int] = Field(default_factory=list)
    """Generated ids (in-process only), including ones that formed a stop string."""
    metrics: TurnMetrics


def sampler_with(sampler: SamplerSettings | None, overrides: dict[str, Any]) -> SamplerSettings:
    """`sampler` (or the defaults) with the non-None `overrides` applied and validated."""
    base = sampler or SamplerSettings()
    updates = {k: v for k, v in overrides.items() if v is not None}
    return SamplerSettings.model_validate({**base.model_dump(), **updates})


class ReplyStream(Iterator[str]):
    """Iterate for the reply's text pieces; `cancel()` or `close()` stops it mid-reply.

    After the iteration ends, `result` holds the GenerationResult (also after a cancel).
    `cancel()` is safe to call from another thread; the backend stops before the next token.
    """

    def __init__(
        self,
        make: Callable[[threading.Event], Generator[str, None, None]],
        finish: Callable[[], GenerationResult | None],
        cancel: threading.Event | None = None,
    ) -> None:
        self._cancel = cancel or threading.Event()
        self._gen = make(self._cancel)
        self._finish = finish
        self._pieces: list[str] = []
        self._started = False

    def __iter__(self) -> ReplyStream:
        return self

    def __next__(self) -> str:
        self._started = True
        piece = next(self._gen)
        self._pieces.append(piece)
        return piece

    @property
    def text(self) -> str:
        """The reply text shown so far."""
        return "".join(self._pieces)

    def cancel(self) -> None:
        """Ask the backend to stop before its next token (thread-safe)."""
        self._cancel.set()

    def close(self) -> None:
        """Stop now and release the backend."""
        self._cancel.set()
        if not self._started:
            # Not begun: run it once so it sees the cancel at its start and records a result.
            self._started = True
            for _ in self._gen:
                pass
        self._gen.close()

    @property
    def result(self) -> GenerationResult:
        """The reply and its metrics; only once the stream has ended or been closed."""
        res = self._finish()
        if res is None:
            raise RuntimeError("the reply is still streaming; iterate to the end or close() it")
        return res

    def collect(self) -> GenerationResult:
        """Run the stream to its end and return the result."""
        for _ in self:
            pass
        return self.result

    def __enter__(self) -> ReplyStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@runtime_checkable
class Backend(Protocol):
    """What the chat engine needs from any backend, in process or remote."""

    @property
    def name(self) -> str:
        """Short label for reports and metrics."""
        ...

    def stream(
        self,
        prompt: PromptInput | str | Sequence[int],
        *,
        sampler: SamplerSettings | None = None,
        stop: Sequence[str] = (),
        cancel: threading.Event | None = None,
    ) -> ReplyStream:
        """Start a reply to `prompt`; iterate the stream for text, then read `.result`."""
        ...
