"""A roleplay chat in progress: the cast, the presets, the chat file and a backend, turn by turn.

The command line's `generate` and the terminal app both drive a `ChatSession`, so the prompt,
the budget and the saved chat are the same whichever you use. Every change to the chat (a new
message, a swipe, an edit, a delete) is written to the chat file atomically as it happens.
"""

from __future__ import annotations

import datetime as _dt
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .assemble import AssemblySettings
from .budget import FittedPrompt
from .chat import Chat, ChatMessage, save_chat, st_timestamp
from .errors import RPContextError
from .flatten import Mode
from .pipeline import Cast, Setup, build_prompt

__all__ = ["ChatSession", "Turn"]

TurnKind = Literal["reply", "swipe", "continue", "impersonate"]
MUTED_KEY = "rp_context_muted"
"""Chat-metadata key holding the group members muted in this chat."""


@dataclass
class Turn:
    """One streaming generation. Iterate for text pieces; `cancel()` stops it from any thread.

    When the stream ends (or is cancelled), the session commits the text to the chat: a new
    message, a new swipe, the continued message, or nothing for an impersonation (`text` holds it).
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

    def __iter__(self) -> Iterator[str]:
        try:
            for piece in self._stream:
                self.text += piece
                yield piece
                if self._cancel.is_set():
                    self._stream.cancel()
        finally:
            self._stream.close()
            self.session._commit(self)

    def cancel(self) -> None:
        """Stop the reply before its next token; what arrived so far is kept."""
        self._cancel.set()
        self._stream.cancel()

    @property
    def metrics(self) -> Any:
        """The backend's TurnMetrics (prompt, reused and evaluated tokens, speed), once ended."""
        try:
            return self._stream.result.metrics
        except RuntimeError:
            return None


class ChatSession:
    """One chat with one backend; call `send`, `reply`, `swipe`, `edit`... and save happens itself."""

    def __init__(
        self,
        cast: Cast,
        setup: Setup,
        chat: Chat,
        *,
        counter: Any,
        backend: Any = None,
        chat_path: str | Path | None = None,
        n_ctx: int = 4096,
        reserve: int | None = None,
        settings: AssemblySettings | None = None,
    ) -> None:
        self.cast = cast
        self.setup = setup
        self.chat = chat
        self.counter = counter
        self.backend = backend
        self.chat_path = Path(chat_path) if chat_path is not None else None
        self.n_ctx = n_ctx
        self.reserve = reserve
        self.settings = settings or AssemblySettings()
        self.warnings: list[str] = []
        """What loading the files reported (repairs, unreadable chat lines)."""
        self.last_fitted: FittedPrompt | None = None
        self.last_metrics: Any = None
        self._lock = threading.Lock()

    # -- who is who ------------------------------------------------------------------------
    @property
    def user(self) -> str:
        if self.cast.persona is not None and self.cast.persona.name:
            return self.cast.persona.name
        return self.chat.header.user_name if self.chat.header else "User"

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
        h = self.chat.header
        return f"{h.character_name}|{h.create_date}" if h else "chat"

    # -- prompts ---------------------------------------------------------------------------
    def prompt(self, *, speaker: str | None = None, mode: Mode = "normal",
               upto: int | None = None) -> FittedPrompt:
        """The fitted prompt for the next reply (or for a swipe of message `upto`)."""
        chat = self.chat
        if upto is not None:
            chat = Chat(header=chat.header, messages=chat.messages[:upto], unreadable=[])
        previous = self.last_fitted.ids if self.last_fitted is not None else None
        return build_prompt(self.cast, chat, self.setup, self.counter, n_ctx=self.n_ctx,
                            reserve=self.reserve, speaker=speaker, mode=mode, settings=self.settings,
                            previous_ids=previous)

    # -- chat changes (each saved at once) --------------------------------------------------
    def save(self) -> None:
        """Write the chat file atomically (no-op without a path)."""
        if self.chat_path is not None:
            save_chat(self.chat, self.chat_path)

    def _new_id(self) -> str:
        used = {m.id for m in self.chat.messages}
        n = len(self.chat.messages)
        while str(n) in used:
            n += 1
        return str(n)

    def send(self, text: str) -> ChatMessage:
        """Add the user's message and save."""
        msg = ChatMessage(id=self._new_id(), name=self.user, role="user", text=text,
                          send_date=st_timestamp())
        self.chat.messages.append(msg)
        self.save()
        return msg

    def edit(self, message_id: str, text: str) -> None:
        msg = self._find(message_id)
        msg.text = text
        if msg.swipes:
            msg.swipes[msg.swipe_id or 0] = text
        self.save()

    def delete(self, message_id: str) -> None:
        msg = self._find(message_id)
        self.chat.messages.remove(msg)
        self.save()

    def swipe(self, message_id: str, step: int) -> bool:
        """Show the previous/next stored swipe of a message; False when there is none that way."""
        msg = self._find(message_id)
        swipes = msg.swipes or [msg.text]
        idx = (msg.swipe_id or 0) + step
        if not 0 <= idx < len(swipes):
            return False
        msg.swipe_id = idx
        msg.text = swipes[idx]
        self.save()
        return True

    # -- for frontends: greetings, muting, display ------------------------------------------
    @property
    def greetings(self) -> list[str]:
        """The first card's greeting and its alternate greetings, in card order."""
        data = self.cast.cards[0].data
        return [g for g in (data.first_mes, *data.alternate_greetings) if g]

    def new_chat(self, greeting: int = 0, *, chat_path: str | Path | None = None) -> Chat:
        """Start over from greeting `greeting` (the others become its swipes) and save it, to
        `chat_path` when given (a new file, so the old chat stays as it was)."""
        from .pipeline import new_chat

        user = self.user
        self.chat = new_chat(self.cast, user=user, greeting=greeting)
        greetings = self.greetings
        if self.chat.messages and len(greetings) > 1:
            first = self.chat.messages[0]
            first.swipes = list(greetings)
            first.swipe_id = max(0, min(greeting, len(greetings) - 1))
            first.text = greetings[first.swipe_id]
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
        if self.chat.header is not None:
            self.chat.header.chat_metadata[MUTED_KEY] = list(now)
        self.save()

    def _apply_muted(self) -> None:
        """Take the mutes saved in the chat file (if any) over the roster's."""
        saved = self.chat.header.chat_metadata.get(MUTED_KEY) if self.chat.header else None
        if self.cast.roster is not None and isinstance(saved, list):
            self.cast.roster.muted = [str(x) for x in saved]
        elif self.cast.roster is not None and self.chat.header is not None and self.cast.roster.muted:
            self.chat.header.chat_metadata[MUTED_KEY] = self.muted

    def display_text(self, message: ChatMessage) -> str:
        """A message's text as a reader sees it: `{{char}}` and `{{user}}` filled in."""
        from .macros import MacroContext, expand_macros

        if "{{" not in message.text:
            return message.text
        char = message.name if message.role == "assistant" and message.name else self.members[0]
        return expand_macros(message.text, MacroContext(user=self.user, char=char, seed=self.chat_id))

    def _find(self, message_id: str) -> ChatMessage:
        for m in self.chat.messages:
            if m.id == message_id:
                return m
        raise RPContextError(f"no message with id {message_id!r} in this chat")

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
        fitted = self.prompt(speaker=speaker, mode=mode, upto=upto)
        self.last_fitted = fitted
        stop = list(fitted.stop)
        sampler = self.setup.sampler
        if kind == "swipe":
            # a new swipe must differ from the old ones even with a fixed seed
            n = len(self.chat.messages[-1].swipes or [None])
            sampler = sampler.model_copy(update={"seed": (sampler.seed or 0) + 7919 * n + 1})
        stream = self.backend.stream(fitted.ids if fitted.ids else fitted.text,
                                     sampler=sampler, stop=stop)
        who = speaker or (self.user if kind == "impersonate" else self.members[0])
        return Turn(self, kind, who, fitted, stream)

    def _commit(self, turn: Turn) -> None:
        if turn.committed:
            return
        turn.committed = True
        try:
            self.last_metrics = turn._stream.result.metrics
        except RuntimeError:
            self.last_metrics = None
        text = self._clean(turn.text, turn.speaker, continuing=turn.kind == "continue")
        turn.text = text
        if turn.kind == "impersonate" or not text.strip():
            return
        now = st_timestamp(_dt.datetime.now())
        if turn.kind == "reply":
            msg = ChatMessage(id=self._new_id(), name=turn.speaker, role="assistant", text=text,
                              send_date=now, swipes=[text], swipe_id=0)
            self.chat.messages.append(msg)
        elif turn.kind == "swipe":
            msg = self.chat.messages[-1]
            swipes = list(msg.swipes or [msg.text])
            swipes.append(text)
            msg.swipes, msg.swipe_id, msg.text = swipes, len(swipes) - 1, text
        else:  # continue
            msg = self.chat.messages[-1]
            msg.text = msg.text + turn.text
            if msg.swipes:
                msg.swipes[msg.swipe_id or 0] = msg.text
        turn.message = msg
        self.save()

    def _clean(self, text: str, speaker: str, *, continuing: bool = False) -> str:
        """Cut the reply where another speaker's `Name:` line starts; strip a leading own name."""
        from .group import others, trim_reply

        members: Sequence[str] = self.members
        if continuing:
            cut = text
            for name in others(speaker, list(members), self.user):
                marker = f"\n{name}:"
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
        preset: str | Path | None = None,
        budget: str | Path | None = None,
        model: str | Path | None = None,
        n_ctx: int = 4096,
        reserve: int | None = None,
        n_gpu_layers: int = 0,
        server: str | None = None,
        greeting: int = 0,
        backend: Any = None,
        counter: Any = None,
    ) -> ChatSession:
        """Load everything from files (checking every input before loading a model) and open a
        chat: the chat file if it exists, else a new chat from the first card's greeting."""
        from .models import resolve_model
        from .pipeline import load_cast, load_setup, new_chat, read_chat

        setup = load_setup(preset, budget=budget)
        cast = load_cast(list(cards), roster=roster, persona=persona)
        if not cast.cards:
            raise RPContextError("a chat needs at least one character card")
        path = Path(chat_path) if chat_path is not None else None
        warnings: list[str] = []
        fresh = path is None or not path.exists()
        if not fresh:
            chat, warnings = read_chat(path)  # type: ignore[arg-type]
        else:
            user = cast.persona.name if cast.persona is not None else "User"
            chat = new_chat(cast, user=user, greeting=greeting)
        model_path = resolve_model(model) if counter is None or (backend is None and server is None) else None
        if counter is None:
            from .tokens import LlamaTokenizer

            counter = LlamaTokenizer(model_path)  # type: ignore[arg-type]
        if backend is None:
            if server:
                from .backends.remote import RemoteBackend

                backend = RemoteBackend(server)
            else:
                from .backends.llama import LlamaBackend

                backend = LlamaBackend(model_path, n_ctx=n_ctx, n_gpu_layers=n_gpu_layers)
        session = cls(cast, setup, chat, counter=counter, backend=backend, chat_path=path,
                      n_ctx=n_ctx, reserve=reserve)
        session.warnings = [*cast.warnings, *warnings]
        if fresh:
            session.new_chat(greeting)  # alternate greetings become the first message's swipes
        else:
            session._apply_muted()
        return session
