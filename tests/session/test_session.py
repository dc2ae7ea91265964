"""ChatSession: every change lands in the chat file at once; replies, swipes, continue, impersonate."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from rp_context.backends.base import GenerationResult, ReplyStream, TurnMetrics
from rp_context.chat import load_chat
from rp_context.errors import RPContextError
from rp_context.session import ChatSession


class ScriptedBackend:
    """Replies from a script, piece by piece; records the prompts and stop strings it was given."""

    name = "scripted"

    def __init__(self, replies: list[list[str]], gate: threading.Event | None = None) -> None:
        self.replies = list(replies)
        self.prompts: list[object] = []
        self.stops: list[list[str]] = []
        self.gate = gate

    def stream(self, prompt, *, sampler=None, stop=(), **kw) -> ReplyStream:
        self.prompts.append(prompt)
        self.stops.append(list(stop))
        pieces = self.replies.pop(0)
        shown: list[str] = []

        def make(ev: threading.Event):
            for i, p in enumerate(pieces):
                if self.gate is not None and i == 1:
                    self.gate.wait(5)
                if ev.is_set():
                    return
                shown.append(p)
                yield p

        def finish() -> GenerationResult:
            n = len(prompt) if isinstance(prompt, list) else 0
            return GenerationResult(text="".join(shown), metrics=TurnMetrics(
                backend="scripted", prompt_tokens=n, reused_tokens=0, evaluated_tokens=n,
                generated_tokens=len(shown)))

        return ReplyStream(make, finish)


def open_session(repo_dir: Path, tmp_path: Path, replies, **kw) -> ChatSession:
    from rp_context.tokens import TiktokenCounter

    return ChatSession.open(cards=[repo_dir / "cards" / "wren-halloway.json"], chat_path=tmp_path / "c.jsonl",
                            backend=ScriptedBackend(replies, **kw), counter=TiktokenCounter(), n_ctx=4096)


def reload(tmp_path: Path):
    return load_chat(tmp_path / "c.jsonl").chat


def test_new_chat_starts_from_the_greeting_and_is_saved(repo_dir, tmp_path) -> None:
    open_session(repo_dir, tmp_path, [])
    saved = reload(tmp_path)
    assert [m.role for m in saved.messages] == ["assistant"]
    assert saved.messages[0].text.startswith("*The kettle screams.")


def test_send_and_reply_are_saved_as_they_happen(repo_dir, tmp_path) -> None:
    s = open_session(repo_dir, tmp_path, [["Aye", ", sit ", "down."]])
    s.send("Hello, Wren.")
    assert reload(tmp_path).messages[-1].text == "Hello, Wren."
    turn = s.reply()
    assert list(turn) == ["Aye", ", sit ", "down."]
    saved = reload(tmp_path)
    assert saved.messages[-1].text == "Aye, sit down." and saved.messages[-1].name == "Wren Halloway"
    prompt = s.backend.prompts[0]
    # the fitted prompt goes to the backend as token ids, with its text for servers that need it
    assert list(prompt.ids) == turn.fitted.ids and prompt.text == turn.fitted.text
    assert "\nTess:" not in s.backend.stops[0] and "\nUser:" in s.backend.stops[0]


def test_swipes_are_kept_and_browsable(repo_dir, tmp_path) -> None:
    s = open_session(repo_dir, tmp_path, [["First."], ["Second."]])
    s.send("Hi.")
    "".join(s.reply())
    "".join(s.reply(kind="swipe"))
    last = reload(tmp_path).messages[-1]
    assert last.swipes == ["First.", "Second."] and last.swipe_id == 1 and last.text == "Second."
    # the swipe's prompt does not contain the reply it replaces
    assert len(s.backend.prompts[1].ids) < len(s.backend.prompts[0].ids) + 3
    assert s.swipe(last.id, -1) is True
    assert reload(tmp_path).messages[-1].text == "First."
    assert s.swipe(last.id, -1) is False


def test_continue_extends_and_impersonate_does_not_write(repo_dir, tmp_path) -> None:
    s = open_session(repo_dir, tmp_path, [["Aye."], [" And more."], ["I nod slowly."]])
    s.send("Hi.")
    "".join(s.reply())
    "".join(s.reply(kind="continue"))
    assert reload(tmp_path).messages[-1].text == "Aye. And more."
    before = (tmp_path / "c.jsonl").read_bytes()
    turn = s.reply(kind="impersonate")
    assert "".join(turn) == "I nod slowly." and turn.text == "I nod slowly."
    assert (tmp_path / "c.jsonl").read_bytes() == before


def test_edit_and_delete(repo_dir, tmp_path) -> None:
    s = open_session(repo_dir, tmp_path, [["Aye."]])
    msg = s.send("Hi.")
    s.edit(msg.id, "Hello there.")
    assert reload(tmp_path).messages[-1].text == "Hello there."
    s.delete(msg.id)
    assert len(reload(tmp_path).messages) == 1
    with pytest.raises(RPContextError):
        s.edit("nope", "x")


def test_cancel_keeps_what_arrived(repo_dir, tmp_path) -> None:
    gate = threading.Event()
    s = open_session(repo_dir, tmp_path, [["Half ", "a ", "reply."]], gate=gate)
    s.send("Hi.")
    turn = s.reply()
    it = iter(turn)
    assert next(it) == "Half "
    turn.cancel()
    gate.set()
    rest = list(it)
    assert rest == []
    assert reload(tmp_path).messages[-1].text == "Half"


def test_a_reply_is_cut_where_someone_else_starts_talking(repo_dir, tmp_path) -> None:
    s = open_session(repo_dir, tmp_path, [["Wren Halloway: Aye.", "\nUser: and then I"]])
    s.send("Hi.")
    "".join(s.reply())
    assert reload(tmp_path).messages[-1].text == "Aye."


def test_swipe_needs_a_reply(repo_dir, tmp_path) -> None:
    s = open_session(repo_dir, tmp_path, [])
    s.send("Hi.")
    with pytest.raises(RPContextError, match="nothing to swipe"):
        s.reply(kind="swipe")


@pytest.fixture
def fits(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """The speaker of every prompt the session fits: the real build_prompt, counted."""
    import rp_context.session as session_module

    real = session_module.build_prompt
    calls: list[str | None] = []

    def counted(*args, **kwargs):
        calls.append(kwargs.get("speaker"))
        return real(*args, **kwargs)

    monkeypatch.setattr(session_module, "build_prompt", counted)
    return calls


def test_a_checked_send_and_its_reply_fit_the_prompt_once(repo_dir, tmp_path, fits) -> None:
    s = open_session(repo_dir, tmp_path, [["Aye."]])
    s.send("Is the lamp lit?", check=True)
    checked = s.last_fitted
    turn = s.reply()
    "".join(turn)
    assert len(fits) == 1 and s.fit_count == 1
    assert turn.fitted is checked  # the reply ran the prompt the check fitted
    assert s.backend.prompts[0].text == checked.text and "Is the lamp lit?" in checked.text


def test_a_change_after_the_check_fits_the_reply_again(repo_dir, tmp_path, fits) -> None:
    s = open_session(repo_dir, tmp_path, [["Aye."], ["Nay."]])
    msg = s.send("Is the lamp lit?", check=True)
    s.edit(msg.id, "Is the lamp out?")
    turn = s.reply()
    "".join(turn)
    assert len(fits) == 2
    assert "Is the lamp out?" in s.backend.prompts[0].text
    assert "Is the lamp lit?" not in s.backend.prompts[0].text
    # a change to what the prompt depends on (here the reserve) is seen too
    s.send("Hello?", check=True)
    s.setup.sampler = s.setup.sampler.model_copy(update={"max_tokens": 77})  # the reserve changes
    "".join(s.reply())
    assert len(fits) == 4 and s.last_fitted.report.reserve == 77
