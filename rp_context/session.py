"""A roleplay chat in progress: the cast, the presets, the chat file and a backend, turn by turn.

The command line's `generate` and the terminal app both drive a `ChatSession`, so the prompt,
the budget and the saved chat are the same whichever you use. Every change to the chat (a new
message, a swipe, an edit, a delete) is written to the chat file atomically as it happens.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from . import chatcontext
from .assembly import AssemblySettings
from .backends.base import Backend, PromptInput, TurnMetrics
from .backends.stops import StopScanner
from .budget import FittedPrompt
from .chat import Chat, ChatMessage, save_chat
from .chatcontext import user_name
from .errors import RPContextError
from .flatten import Mode
from .pipeline import Cast, PromptCache, Setup, build_prompt
from .reasoning import (
    THINKING_KEY,
    Delta,
    ReasoningSplitter,
    closing_text,
    orphan_split,
    shape_opened_by,
    shapes_for,
    split_stops,
    thinking_for,
)
from .sampling import SamplerSettings
from .tokens import TokenCounter

__all__ = ["ChatSession", "SessionOptions", "Turn"]

TurnKind = Literal["reply", "swipe", "continue", "impersonate"]


@dataclass
class Turn:
    """One streaming generation. Iterate for text pieces (or `deltas()` for reasoning and text
    apart); `cancel()` stops it from any thread.

    While it streams, `reasoning` holds the reasoning so far and `thinking` says whether the
    model is still in its reasoning block. When the stream ends (or is cancelled), the session
    commits the text and reasoning to the chat: a new message, a new swipe, the continued
    message, or nothing for an impersonation (`text` holds it).
    """

    session: ChatSession
    kind: TurnKind
    speaker: str
    fitted: FittedPrompt
    _stream: Any
    _cancel: threading.Event = field(default_factory=threading.Event)
    text: str = ""
    message: ChatMessage | None = None
    committed: bool = False
    reasoning: str = ""
    """The reply's reasoning so far (stored apart from the text, in `extra.reasoning`)."""
    reasoning_duration: float | None = None
    """Seconds from the start of the turn to the end of the reasoning block."""
    raw: str = ""
    """Everything the model wrote, markers and all."""
    _splitter: ReasoningSplitter | None = None
    _text_stops: StopScanner | None = None
    _sampler: SamplerSettings | None = None
    _stop: list[str] = field(default_factory=list)
    _earlier_tokens: int = 0
    _started: float = field(default_factory=time.monotonic)

    @property
    def thinking(self) -> bool:
        """True while the model is inside its reasoning block."""
        return self._splitter is not None and self._splitter.in_reasoning

    def __iter__(self) -> Iterator[str]:
        deltas = self.deltas()
        try:
            for delta in deltas:
                if delta.text:
                    yield delta.text
        finally:
            deltas.close()  # a consumer that stops early still commits the turn now

    def deltas(self) -> Iterator[Delta]:
        """Reasoning and text pieces as they arrive (one of the two may be empty)."""
        try:
            while True:
                for piece in self._stream:
                    self.raw += piece
                    delta = self._take(self._splitter.feed(piece) if self._splitter else Delta("", piece))
                    if delta.reasoning or delta.text:
                        yield delta
                    if self._cancel.is_set() or (self._text_stops and self._text_stops.stopped):
                        self._stream.cancel()
                    elif self._splitter is not None and self._splitter.over_budget:
                        break
                else:
                    break
                closed = self._take(self._splitter.close())  # budget spent: close the block
                if closed.reasoning:
                    yield closed
                self._stream = self.session._close_reasoning(self, self._stream)
            if self._splitter is not None:
                delta = self._take(self._splitter.finish())
                if delta.reasoning or delta.text:
                    yield delta
            if self._text_stops is not None and self._text_stops.stopped is None:
                tail = self._text_stops.flush()  # a held start of a stop string that never came
                self.text += tail
                if tail:
                    yield Delta("", tail)
        finally:
            self._stream.close()
            self.session._commit(self)
        if self.kind == "reply" and self.message is not None and self.session.auto_memory:
            self.session.update_memory(self.fitted)  # after the reply is shown

    def _take(self, delta: Delta) -> Delta:
        """Record a split piece: reasoning as is, text through the held-back stop strings."""
        self.reasoning += delta.reasoning
        if self.reasoning and self.reasoning_duration is None and not self.thinking:
            self.reasoning_duration = time.monotonic() - self._started
        text = delta.text
        if text and self._text_stops is not None:
            text = self._text_stops.feed(text)
        self.text += text
        return Delta(delta.reasoning, text)

    def cancel(self) -> None:
        """Stop the reply before its next token; what arrived so far is kept."""
        self._cancel.set()
        self._stream.cancel()

    @property
    def metrics(self) -> TurnMetrics | None:
        """The backend's TurnMetrics (prompt, reused and evaluated tokens, speed), once ended."""
        try:
            metrics = self._stream.result.metrics
        except RuntimeError:
            return None
        if self._earlier_tokens:  # the reasoning generated before the budget closed the block
            total = metrics.generated_tokens + self._earlier_tokens
            metrics = metrics.model_copy(update={"generated_tokens": total})
        return metrics


class SessionOptions(BaseModel):
    """How a chat runs: the presets it is fitted and sampled with, the model and its window,
    where it runs, and the KV state kept across restarts. One frozen value that the command line
    (`generate`'s flags), the app (its settings) and library callers build alike; what is talked
    about (cards, roster, persona, chat file) is not an option but what `ChatSession.open` loads.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    preset: str | Path | None = None
    """Bundle name, instruct family, preset file, FILE.jinja or `gguf:MODEL` (`gguf:` alone: the
    model's own template); None: the default bundle."""
    budget: str | Path | None = None
    """Budget policy preset name or file; None: the bundle's."""
    sampler: str | Path | None = None
    """Sampler preset name or file (YAML or SillyTavern JSON); None: the bundle's."""
    max_tokens: int | None = Field(None, ge=1)
    """Longest reply in tokens; None: the sampler preset's."""
    model: Path | None = None
    """GGUF model file; None: $RP_CONTEXT_MODEL or the bundled SmolLM2-135M."""
    n_ctx: int = Field(4096, ge=1)
    """Context window in tokens."""
    reserve: int | None = Field(None, ge=0)
    """Tokens kept for the reply; None: the sampler's `max_tokens`."""
    n_gpu_layers: int = Field(0, ge=-1)
    """Layers offloaded to the GPU (-1: all) when the model runs in process."""
    server: str | None = None
    """OpenAI-compatible server URL to run on instead of the in-process model."""
    summary_server: str | None = None
    """OpenAI-compatible server URL that writes the memory's summaries instead of the chat's own
    backend (token ids when it speaks the model's tokenizer, else the request's text)."""
    kv_state: bool = True
    """Restore the chat's saved KV cache on open and save it after each reply."""
    kv_state_limit_mb: int = Field(4096, ge=0)
    """Size limit of the folder of saved KV states (oldest go first)."""

    LOADED: ClassVar[tuple[str, ...]] = ("preset", "budget", "model", "n_ctx", "n_gpu_layers",
                                         "server")
    """What is fixed once the session is open: changing one needs a new session."""

    def replace(self, **changes: Any) -> SessionOptions:
        """A copy with `changes` (checked as the constructor checks them)."""
        if not changes:
            return self
        return type(self).model_validate({**self.model_dump(), **changes})

    @classmethod
    def of(cls, options: SessionOptions | None = None, **changes: Any) -> SessionOptions:
        """`options` (or the defaults) with keyword changes; a name that is no option is a
        TypeError, as for any function."""
        unknown = sorted(set(changes) - set(cls.model_fields))
        if unknown:
            raise TypeError(f"unexpected keyword argument {unknown[0]!r} (not a SessionOptions field)")
        return (options or cls()).replace(**changes)

    def reloads(self, other: SessionOptions) -> list[str]:
        """The options that differ from `other` and need a new session to take effect."""
        return [name for name in self.LOADED if getattr(self, name) != getattr(other, name)]

    def setup_spec(self) -> str | Path | None:
        """The preset to load (`gguf:` alone names the model in use)."""
        if str(self.preset or "") == "gguf:" and self.model:
            return f"gguf:{self.model}"
        return self.preset

    def sampler_over(self, base: SamplerSettings) -> SamplerSettings:
        """The sampler these options ask for: `base` (the bundle's) unless a sampler preset is
        named, with the reply length set; PresetError for an unknown or broken preset."""
        from .presets.library import load_sampler

        sampler = load_sampler(self.sampler) if self.sampler else base
        if self.max_tokens:
            sampler = sampler.model_copy(update={"max_tokens": self.max_tokens})
        return sampler


class ChatSession:
    """One chat with one backend; call `send`, `reply`, `swipe`, `edit`... and save happens itself."""

    def __init__(
        self,
        cast: Cast,
        setup: Setup,
        chat: Chat,
        *,
        counter: TokenCounter,
        backend: Backend | None = None,
        chat_path: str | Path | None = None,
        options: SessionOptions | None = None,
        settings: AssemblySettings | None = None,
    ) -> None:
        self.cast = cast
        self.setup = setup
        self.chat = chat
        self.counter = counter
        self.backend = backend
        self.chat_path = Path(chat_path) if chat_path is not None else None
        self.options = options or SessionOptions()
        """How this session runs; `apply` changes what can change while it is open."""
        self._preset_sampler = setup.sampler
        setup.sampler = self.options.sampler_over(setup.sampler)
        self.settings = settings or AssemblySettings()
        self.warnings: list[str] = []
        """What loading the files reported (repairs, unreadable chat lines)."""
        self.last_fitted: FittedPrompt | None = None
        self.last_metrics: TurnMetrics | None = None
        self.auto_memory = True
        """Write the memory of evicted turns after a reply when it is due (the budget preset's
        `memory` setting can turn it off for good)."""
        self.memory_error: str | None = None
        """Why the last summary could not be written, if it failed (the chat is unchanged)."""
        self.fit_count = 0
        """Prompts fitted so far (a `send(check=True)` and the reply after it share one)."""
        self._checked: tuple[tuple[Any, ...], FittedPrompt] | None = None
        self.prompt_cache = PromptCache()
        self._summary_backend: tuple[str, Any] | None = None
        """What this chat's prompts reuse from turn to turn (segments, their token costs)."""
        self._revision = 0
        self.restored_tokens = 0
        """Tokens of saved KV state restored when the chat was opened (0: none)."""
        self.restore_s = 0.0
        """Seconds that restore took."""
        self.on_progress: Callable[[int, int], None] | None = None
        """`(processed, total)` callback while the backend reads a prompt (the app's progress)."""
        self._lock = threading.Lock()

    # -- options ---------------------------------------------------------------------------
    @property
    def n_ctx(self) -> int:
        return self.options.n_ctx

    @property
    def reserve(self) -> int | None:
        return self.options.reserve

    @property
    def kv_state(self) -> bool:
        return self.options.kv_state

    @property
    def kv_state_limit_mb(self) -> int:
        return self.options.kv_state_limit_mb

    def apply(self, options: SessionOptions) -> None:
        """Take new options while the chat is open (sampler, reply length, reserve, KV state,
        summary server);
        RPContextError, with nothing changed, when one needs a new session (model, window...)."""
        if options == self.options:
            return
        reloads = options.reloads(self.options)
        if reloads:
            raise RPContextError(f"changing {', '.join(reloads)} needs the chat opened again")
        self.setup.sampler = options.sampler_over(self._preset_sampler)
        self.options = options

    # -- who is who ------------------------------------------------------------------------
    @property
    def user(self) -> str:
        return user_name(self.cast.persona, self.chat)

    @property
    def members(self) -> list[str]:
        return self.cast.names

    @property
    def is_group(self) -> bool:
        return len(self.cast.cards) > 1

    def next_speakers(self, *, user_typed: bool = True, forced: str | None = None) -> list[str]:
        """Who replies next: the roster's strategy in a group (seeded by the chat), else the card."""
        if not self.is_group or self.cast.roster is None:
            return [self.members[0]]
        from .group import pick_speakers

        seed = f"{self.chat_id}:{len(self.chat.messages)}"
        return pick_speakers(self.cast.roster, self.cast.cards, self.chat.messages, seed=seed,
                             user_typed=user_typed, forced=forced)

    @property
    def chat_id(self) -> str:
        return chatcontext.chat_id(self.chat)

    # -- prompts ---------------------------------------------------------------------------
    def prompt(self, *, speaker: str | None = None, mode: Mode = "normal",
               upto: int | None = None) -> FittedPrompt:
        """The fitted prompt for the next reply (or for a swipe of message `upto`)."""
        chat = self.chat
        if upto is not None:
            chat = Chat(header=chat.header, messages=chat.messages[:upto], unreadable=[])
        previous = self.last_fitted.ids if self.last_fitted is not None else None
        self.fit_count += 1
        return build_prompt(self.cast, chat, self.setup, self.counter, n_ctx=self.n_ctx,
                            reserve=self.reserve, speaker=speaker, mode=mode, settings=self.settings,
                            previous_ids=previous, cache=self.prompt_cache)

    def _prompt_key(self, speaker: str | None, mode: Mode, upto: int | None) -> tuple[Any, ...]:
        """What a fitted prompt depends on: the chat (its revision: every change through the
        session bumps it), who speaks and how, the cast, the presets, the settings, the options."""
        s = self.setup
        return (self._revision, len(self.chat.messages), speaker, mode, upto, tuple(self.cast.cards),
                self.cast.roster, self.cast.persona, s.instruct, s.context, s.sysprompt, s.sampler,
                s.budget, self.settings, self.options)

    def _fit_for_reply(self, speaker: str | None, mode: Mode, upto: int | None) -> FittedPrompt:
        """The reply's prompt: the one `send(check=True)` fitted when nothing changed since,
        else a new fit."""
        checked, self._checked = self._checked, None
        if checked is not None and checked[0] == self._prompt_key(speaker, mode, upto):
            return checked[1]
        return self.prompt(speaker=speaker, mode=mode, upto=upto)

    # -- memory of evicted turns ----------------------------------------------------------------
    @property
    def memory(self) -> dict[str, Any] | None:
        """The newest stored summary: {text, message_id (stored on), covers (messages),
        shown (in the last prompt)}; None when the chat has none."""
        return self.memory_in(self.last_fitted)

    def memory_in(self, fitted: FittedPrompt | None) -> dict[str, Any] | None:
        """`memory`, with `shown` saying whether it is in `fitted` (a preview of the next
        prompt, say)."""
        from .memory import stored_memories

        mems = stored_memories([m for m in self.chat.messages if not m.hidden])
        if not mems:
            return None
        shown = fitted.report.memory if fitted is not None else None
        m = mems[-1]
        return {"text": m.text, "message_id": m.message_id, "covers": m.index + 1,
                "shown": bool(shown and shown.get("message_id") == m.message_id)}

    def set_memory(self, text: str) -> None:
        """Replace the newest summary's text (the user's edit), or store one on the last
        message; saved at once."""
        from .memory import store_memory, stored_memories

        mems = stored_memories([m for m in self.chat.messages if not m.hidden])
        if mems:
            self.chat.message(mems[-1].message_id).extra["memory"] = text
        elif self.chat.messages:
            store_memory(self.chat, text, covers=self.chat.messages[-1].id, front=None)
        self.save()

    def summarizer(self) -> Backend:
        """The backend that writes summaries: the options' summary server (connected on first
        use, kept while its URL stands), else the chat's own backend."""
        url = self.options.summary_server
        if not url or self.backend is None:
            return self.backend  # type: ignore[return-value]
        held = self._summary_backend
        if held is None or held[0] != url:
            from .backends.remote import RemoteBackend

            if held is not None:
                held[1].close()
            remote = RemoteBackend(url)
            remote.speaks_ids_of(self.counter)  # ids if it agrees, else the request's text
            held = self._summary_backend = (url, remote)
        return held[1]

    def memory_due(self, fitted: FittedPrompt | None = None) -> bool:
        """Would a summary be written now (after the reply built from `fitted`)?"""
        from .memory import memory_due

        fitted = fitted or self.last_fitted
        if fitted is None:
            return False
        n = sum(1 for s in fitted.assembled.segments if s.kind.value == "chat_message")
        return memory_due(fitted, fitted.assembled.memories, self.setup.budget, n)

    def update_memory(self, fitted: FittedPrompt | None = None, *, force: bool = False) -> str | None:
        """Write the summary of what the prompt holds (SillyTavern's classic mode: the prompt
        plus the summary instruction) when due, store it on the newest message, save; returns
        the new text, or None when nothing was written."""
        from .memory import store_memory, summarize

        fitted = fitted or self.last_fitted
        if (fitted is None or self.backend is None or not self.chat.messages
                or not self.setup.budget.memory or not (force or self.memory_due(fitted))):
            return None
        try:
            text, covers = summarize(self.summarizer(), fitted, self.counter, self.setup.budget,
                                     self.setup.sampler)
        except (RPContextError, OSError, RuntimeError) as exc:
            self.memory_error = str(exc)
            return None
        if not text:
            return None
        self.memory_error = None
        store_memory(self.chat, text, covers=covers, front=fitted.report.front)
        self.save()
        return text

    # -- chat changes (each saved at once) --------------------------------------------------
    def save(self) -> None:
        """Write the chat file atomically (no-op without a path). Every change to the chat goes
        through here, so it also marks the chat changed: a prompt fitted before is stale."""
        self._revision += 1
        if self.chat_path is not None:
            save_chat(self.chat, self.chat_path)

    def send(self, text: str, *, check: bool = False, speaker: str | None = None) -> ChatMessage:
        """Add the user's message and save. With `check`, the next reply's prompt is fitted first
        (and reused by that reply when nothing changes in between): a refusal (the card does not
        fit the window, a broken template...) raises with the chat unchanged and nothing written,
        so a retry never duplicates the message."""
        msg = self.chat.append(self.user, "user", text)
        if check:
            try:
                who = speaker or next(iter(self.next_speakers()), None)
                fitted = self.prompt(speaker=who)
            except BaseException:
                self.chat.messages.remove(msg)
                raise
        self.save()
        if check:
            self.last_fitted = fitted
            self._checked = (self._prompt_key(who, "normal", None), fitted)
        return msg

    def edit(self, message_id: str, text: str) -> None:
        """Replace a message's text (its selected swipe with it)."""
        self.chat.message(message_id).set_text(text)
        self.save()

    def edit_reasoning(self, message_id: str, reasoning: str) -> None:
        """Replace (or with "" remove) a reply's reasoning; marked `edited` as SillyTavern does."""
        self.chat.message(message_id).edit_reasoning(reasoning)
        self.save()

    def delete(self, message_id: str) -> None:
        self.chat.delete(message_id)
        self.save()

    def swipe(self, message_id: str, step: int) -> bool:
        """Show the previous/next stored swipe of a message; False when there is none that way."""
        if not self.chat.message(message_id).step_swipe(step):
            return False
        self.save()
        return True

    # -- for frontends: greetings, muting, display ------------------------------------------
    @property
    def greetings(self) -> list[str]:
        """The first card's greeting and its alternate greetings, in card order."""
        return self.cast.greetings

    def new_chat(self, greeting: int = 0, *, chat_path: str | Path | None = None) -> Chat:
        """Start over from greeting `greeting` (the others become its swipes) and save it, to
        `chat_path` when given (a new file, so the old chat stays as it was)."""
        from .pipeline import new_chat

        self.chat = new_chat(self.cast, user=self.user, greeting=greeting)
        if chat_path is not None:
            self.chat_path = Path(chat_path)
        self.last_fitted = None
        self.last_metrics = None
        self._apply_muted()
        self.save()
        return self.chat

    @property
    def muted(self) -> list[str]:
        """Group members (by name) who do not speak on their own in this chat."""
        if self.cast.roster is None:
            return []
        from .group import group_members

        return [m.name for m in group_members(self.cast.roster, self.cast.cards) if m.muted]

    def set_muted(self, name: str, muted: bool = True) -> None:
        """Mute or unmute a group member for this chat (kept in the chat file's metadata)."""
        if self.cast.roster is None:
            raise RPContextError("muting needs a group chat")
        from .group import group_members, resolve_member

        member = resolve_member(group_members(self.cast.roster, self.cast.cards), name)
        now = [m for m in self.muted if m != member.name]
        if muted:
            now.append(member.name)
        self.cast.roster.muted = now
        self.chat.keep_muted(now)
        self.save()

    def _apply_muted(self) -> None:
        """Take the mutes saved in the chat file (if any) over the roster's."""
        if self.cast.roster is None:
            return
        saved = self.chat.muted
        if saved is not None:
            self.cast.roster.muted = saved
        elif self.cast.roster.muted:
            self.chat.keep_muted(self.muted)

    def display_text(self, message: ChatMessage) -> str:
        """A message's text as the model gets it: macros expanded in the prompt's context, with the
        same frozen `{{random}}`, `{{roll}}`, `{{pick}}` and time values."""
        cast = self.cast
        who = chatcontext.identify(self.chat, cast.cards, roster=cast.roster, persona=cast.persona)
        return chatcontext.message_text(message, who)

    # -- generation ------------------------------------------------------------------------
    def reply(self, speaker: str | None = None, *, kind: TurnKind = "reply") -> Turn:
        """Start the next reply (or a new swipe of the last message, a continuation, or the
        user's line for `impersonate`); iterate the Turn to stream it."""
        if self.backend is None:
            raise RPContextError("this session has no backend to generate with")
        mode: Mode = {"reply": "normal", "swipe": "normal", "continue": "continue",
                      "impersonate": "impersonate"}[kind]
        upto = None
        if kind in ("swipe", "continue"):
            last = self.chat.messages[-1] if self.chat.messages else None
            if last is None or last.role != "assistant":
                raise RPContextError(f"nothing to {kind}: the last message is not a reply")
            speaker = speaker or last.name or None
            if kind == "swipe":
                upto = len(self.chat.messages) - 1
        if speaker is None:
            speaker = self.next_speakers()[0] if kind != "impersonate" else None
        fitted = self._fit_for_reply(speaker, mode, upto)
        self.last_fitted = fitted
        stop = list(fitted.stop)
        sampler = self.setup.sampler
        if kind == "swipe":
            # a new swipe must differ from the old ones even with a fixed seed
            n = len(self.chat.messages[-1].swipes or [None])
            sampler = sampler.model_copy(update={"seed": (sampler.seed or 0) + 7919 * n + 1})
        splitter = self._splitter_for(kind, fitted)
        held: list[str] = []
        if splitter is not None:
            stop, held = split_stops(stop, splitter.shapes)
        extra: dict[str, Any] = {}
        if self.setup.budget.eviction == "shift" and _accepts(self.backend.stream, "context_shift"):
            extra["context_shift"] = True  # the policy evicts one turn at a time: shift the cache
        if self.on_progress is not None and _accepts(self.backend.stream, "on_progress"):
            extra["on_progress"] = self.on_progress
        prompt = PromptInput(ids=tuple(fitted.ids) if fitted.ids else None, text=fitted.text)
        stream = self.backend.stream(prompt, sampler=sampler, stop=stop, **extra)
        who = speaker or (self.user if kind == "impersonate" else self.members[0])
        return Turn(self, kind, who, fitted, stream, _splitter=splitter,
                    _text_stops=StopScanner(held) if held else None, _sampler=sampler, _stop=stop)

    # -- reasoning -------------------------------------------------------------------------
    @property
    def thinking(self) -> bool | None:
        """This chat's thinking switch: on, off, or None for the model's own default."""
        meta = self.chat.header.chat_metadata if self.chat.header is not None else None
        return thinking_for(meta, self.setup.instruct.reasoning)

    def set_thinking(self, on: bool | None) -> None:
        """Switch thinking on or off for this chat (None: back to the preset's default); saved in
        the chat file's metadata. The preset says how: a prefill or a `/no_think`-style switch."""
        if self.chat.header is None:
            raise RPContextError("this chat has no header line to keep the thinking switch in")
        meta = self.chat.header.chat_metadata
        if on is None:
            meta.pop(THINKING_KEY, None)
        else:
            meta[THINKING_KEY] = on
        self.save()

    def _splitter_for(self, kind: TurnKind, fitted: FittedPrompt) -> ReasoningSplitter | None:
        """A splitter for this turn's reply: mid-block when the prompt opened it (template,
        prefill, or a continued reply whose reasoning was unfinished); None when not parsing."""
        fmt = self.setup.instruct.reasoning
        if not fmt.parse or kind == "impersonate":
            return None
        shapes = shapes_for(fmt)
        if kind == "continue":
            last = self.chat.messages[-1]
            if not (last.reasoning and not last.text.strip()):
                return None  # the reply text goes on; no block can open mid-reply
            inside = shapes[0]
        else:
            inside = shape_opened_by(fitted.text[-256:], shapes)
        count = self.counter.count if fmt.budget else None
        return ReasoningSplitter(shapes, inside=inside, budget=fmt.budget, count=count)

    def _close_reasoning(self, turn: Turn, stream: Any) -> Any:
        """The reasoning budget is spent: stop, write the block's close after what the model
        wrote, and go on from there (llama.cpp reuses the cached prompt and reasoning)."""
        stream.close()
        closing = closing_text(self.setup.instruct.reasoning, turn._splitter.shape if turn._splitter else None)
        try:
            generated = list(stream.result.token_ids)
            turn._earlier_tokens += stream.result.metrics.generated_tokens
        except RuntimeError:
            generated = []
        text = turn.fitted.text + turn.raw + closing
        prompt: Any = text
        if turn.fitted.ids and generated and self.counter.exact:
            ids = [*turn.fitted.ids, *generated, *self.counter.tokenize(closing, special=True)]
            prompt = PromptInput(ids=tuple(ids), text=text)
        turn.raw += closing
        return self.backend.stream(prompt, sampler=turn._sampler, stop=turn._stop)

    def _commit(self, turn: Turn) -> None:
        if turn.committed:
            return
        turn.committed = True
        self.last_metrics = turn.metrics
        if turn._splitter is not None and turn._splitter.shape is None:
            found = orphan_split(turn.text, turn._splitter.shapes[0])
            if found is not None:  # the model began mid-block, unasked: its closer tells
                turn.reasoning, turn.text = found.reasoning, found.text
        text = self._clean(turn.text, turn.speaker, continuing=turn.kind == "continue")
        turn.text = text
        if turn.reasoning and turn.reasoning_duration is None:  # the block never closed
            turn.reasoning_duration = time.monotonic() - turn._started
        reasoning = turn.reasoning.strip()
        if turn.kind == "impersonate" or not (text.strip() or reasoning):
            return
        if turn.kind == "continue":  # the text goes on, and an unfinished reasoning block
            msg = self.chat.messages[-1]
            msg.extend(turn.text, turn.reasoning, duration_s=turn.reasoning_duration)
        else:
            if turn.kind == "reply":
                msg = self.chat.append(turn.speaker, "assistant", text)
            else:  # swipe
                msg = self.chat.messages[-1]
                msg.add_swipe(text)
            msg.set_reasoning(reasoning, duration_s=turn.reasoning_duration)
        turn.message = msg
        self.save()
        self.save_state()

    # -- KV state across restarts ----------------------------------------------------------
    def restore_state(self) -> int:
        """Load this chat's saved KV state into the backend (on open); tokens restored. A state
        that does not fit (another model, cache type...) is skipped with a line in `warnings`."""
        from .backends.persist import attach_chat, restore_chat

        if not self.kv_state or self.chat_path is None or self.backend is None:
            return 0
        if not self.chat_path.exists():
            attach_chat(self.backend, self.chat_path)
            return 0
        t0 = time.perf_counter()
        n, warning = restore_chat(self.backend, self.chat_path)
        self.restore_s = time.perf_counter() - t0
        if warning:
            self.warnings.append(warning)
        self.restored_tokens = n
        return n

    def save_state(self) -> None:
        """Save the backend's KV state for this chat (after a reply); problems become warnings."""
        from .backends.persist import save_chat

        if not self.kv_state or self.chat_path is None or self.backend is None:
            return
        warning = save_chat(self.backend, self.chat_path, limit_mb=self.kv_state_limit_mb)
        if warning and warning not in self.warnings:
            self.warnings.append(warning)

    def _clean(self, text: str, speaker: str, *, continuing: bool = False) -> str:
        """Cut the reply where another speaker's `Name:` line starts; strip a leading own name."""
        from .group import others, trim_reply
        from .templates.costs import name_stop

        members: Sequence[str] = self.members
        if continuing:
            cut = text
            for name in others(speaker, list(members), self.user):
                marker = name_stop(name)
                if marker in cut:
                    cut = cut[: cut.index(marker)]
            return cut.rstrip()
        return trim_reply(text, speaker, list(members), self.user).strip()

    # -- opening ---------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        *,
        cards: Sequence[str | Path] = (),
        roster: str | Path | None = None,
        persona: str | Path | None = None,
        chat_path: str | Path | None = None,
        greeting: int = 0,
        options: SessionOptions | None = None,
        backend: Backend | None = None,
        counter: TokenCounter | None = None,
        **changes: Any,
    ) -> ChatSession:
        """Load the cast, the presets and the chat (the file if it exists, else a new chat from
        the first card's greeting number `greeting`), checking every input before a model loads,
        and run it as `options` say. Each option may also be given by keyword (`n_ctx=8192`),
        over `options`. Without `backend`/`counter` the options' model (or server) provides them."""
        from .pipeline import load_cast, load_setup, read_chat

        options = SessionOptions.of(options, **changes)
        setup = load_setup(options.setup_spec(), budget=options.budget)
        options.sampler_over(setup.sampler)  # a bad sampler preset fails before a model loads
        cast = load_cast(list(cards), roster=roster, persona=persona)
        if not cast.cards:
            raise RPContextError("a chat needs at least one character card")
        path = Path(chat_path) if chat_path is not None else None
        fresh = path is None or not path.exists()
        chat, warnings = (Chat(), []) if fresh else read_chat(path)  # type: ignore[arg-type]
        counter, backend = _engine(options, counter, backend, warnings)
        session = cls(cast, setup, chat, counter=counter, backend=backend, chat_path=path,
                      options=options)
        session.warnings = [*cast.warnings, *warnings]
        if fresh:
            session.new_chat(greeting)  # alternate greetings become the first message's swipes
        else:
            session._apply_muted()
        session.restore_state()
        return session


def _engine(options: SessionOptions, counter: TokenCounter | None, backend: Backend | None,
            warnings: list[str]) -> tuple[TokenCounter, Backend]:
    """The token counter and backend the options name, for whichever of the two is not given:
    the model's tokenizer, and the model in process or the server (a warning when the server's
    tokenizer is another one)."""
    from .models import resolve_model

    model = (resolve_model(options.model)
             if counter is None or (backend is None and options.server is None) else None)
    if counter is None:
        from .tokens import LlamaTokenizer

        counter = LlamaTokenizer(model)  # type: ignore[arg-type]
    if backend is not None:
        return counter, backend
    if options.server:
        from .backends.remote import RemoteBackend

        remote = RemoteBackend(options.server)
        if not remote.speaks_ids_of(counter):
            warnings.append(f"{options.server}: its tokenizer is not {counter.name}'s; the prompt "
                            "goes as text (counts are estimates, special-token text in messages "
                            "may be read as markers)")
        return counter, remote
    from .backends.llama import LlamaBackend

    return counter, LlamaBackend(model, n_ctx=options.n_ctx, n_gpu_layers=options.n_gpu_layers)


def _accepts(fn: Any, name: str) -> bool:
    """Whether callable `fn` takes keyword `name` (backends differ in what they offer)."""
    import inspect

    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
