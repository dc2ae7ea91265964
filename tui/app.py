"""A first chat screen: one character, streaming replies, Esc to stop. The full app replaces it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from textual import on, work
from textual.app import App, ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Footer, Header, Input, Markdown, Static
from textual.worker import get_current_worker


class ChatSession(Protocol):
    """What the app needs from the engine: names, a greeting and a streaming reply."""

    char_name: str
    user_name: str
    greeting: str

    def reply(self, message: str, history: list[tuple[str, str]]) -> Iterator[str]: ...


@dataclass
class LlamaSession:
    """A session on the in-process llama.cpp backend with the first-slice ChatML prompt."""

    card: Any
    tokenizer: Any
    backend: Any
    user_name: str
    char_name: str = ""
    greeting: str = ""
    stop: list[str] = field(default_factory=list)

    @classmethod
    def open(
        cls,
        *,
        card: str | Path | None,
        model: str | Path | None,
        user: str,
        n_ctx: int,
        n_gpu_layers: int,
    ) -> LlamaSession:
        from rp_context.backends.llama import LlamaBackend
        from rp_context.models import resolve_model
        from rp_context.paths import default_card_path
        from rp_context.quickstart import read_simple_card
        from rp_context.tokens import LlamaTokenizer

        model_path = resolve_model(model)
        simple = read_simple_card(card or default_card_path())
        greeting = simple.first_mes.replace("{{char}}", simple.name).replace("{{user}}", user)
        return cls(
            card=simple,
            tokenizer=LlamaTokenizer(model_path),
            backend=LlamaBackend(model_path, n_ctx=n_ctx, n_gpu_layers=n_gpu_layers),
            user_name=user,
            char_name=simple.name,
            greeting=greeting,
            stop=["<|im_end|>", "<|im_start|>", f"\n{user}:"],
        )

    def reply(self, message: str, history: list[tuple[str, str]]) -> Iterator[str]:
        from rp_context.quickstart import chatml_parts

        ids = self.tokenizer.tokenize_parts(
            chatml_parts(self.card, message, user=self.user_name, history=history)
        )
        yield from self.backend.stream(ids, max_tokens=300, stop=self.stop)


class MessageView(Static):
    """One chat message: the speaker's name over markdown text."""

    DEFAULT_CSS = """
    MessageView { padding: 0 1; margin: 0 0 1 0; }
    MessageView .speaker { text-style: bold; color: $accent; }
    MessageView.user .speaker { color: $success; }
    """

    def __init__(self, speaker: str, text: str, *, is_user: bool) -> None:
        super().__init__(classes="user" if is_user else "char")
        self.speaker = speaker
        self.text = text

    def compose(self) -> ComposeResult:
        yield Static(self.speaker, classes="speaker")
        yield Markdown(self.text)

    async def set_text(self, text: str) -> None:
        self.text = text
        await self.query_one(Markdown).update(text)


class ChatApp(App[None]):
    """rp-chat: talk to one character; the reply streams in a thread worker, Esc stops it."""

    TITLE = "rp-chat"
    CSS = """
    #log { height: 1fr; }
    #prompt { dock: bottom; }
    """
    BINDINGS = [("escape", "stop", "Stop reply"), ("ctrl+q", "quit", "Quit")]

    def __init__(self, session: ChatSession) -> None:
        super().__init__()
        self.session = session
        self.history: list[tuple[str, str]] = []
        self._streaming: MessageView | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="log"):
            if self.session.greeting:
                yield MessageView(self.session.char_name, self.session.greeting, is_user=False)
        yield Input(placeholder=f"Say something to {self.session.char_name}…", id="prompt")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = self.session.char_name
        self.query_one("#prompt", Input).focus()

    @on(Input.Submitted, "#prompt")
    async def send(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text or self._streaming is not None:
            return
        event.input.value = ""
        log = self.query_one("#log", VerticalScroll)
        await log.mount(MessageView(self.session.user_name, text, is_user=True))
        self._streaming = MessageView(self.session.char_name, "…", is_user=False)
        await log.mount(self._streaming)
        log.scroll_end(animate=False)
        self.generate(text, list(self.history))

    @work(thread=True, exclusive=True, group="generation", exit_on_error=False)
    def generate(self, message: str, history: list[tuple[str, str]]) -> None:
        worker = get_current_worker()
        reply = ""
        for piece in self.session.reply(message, history):
            if worker.is_cancelled:
                break
            reply += piece
            self.call_from_thread(self._show, reply)
        self.call_from_thread(self._finish, message, reply)

    async def _show(self, text: str) -> None:
        if self._streaming is not None:
            await self._streaming.set_text(text)
            self.query_one("#log", VerticalScroll).scroll_end(animate=False)

    async def _finish(self, message: str, reply: str) -> None:
        reply = reply.strip()
        if self._streaming is not None:
            await self._streaming.set_text(reply or "*(no reply)*")
        self.history.append(("user", message))
        self.history.append(("assistant", reply))
        self._streaming = None

    def action_stop(self) -> None:
        self.workers.cancel_group(self, "generation")
