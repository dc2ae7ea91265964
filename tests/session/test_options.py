"""SessionOptions: one value for how a chat runs, built alike by the library, the command line
(`generate`, `render`) and the app's settings; what changes while a chat is open, and what not."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from rp_context import SessionOptions
from rp_context.cli import main
from rp_context.errors import PresetError, RPContextError
from rp_context.pipeline import load_setup
from rp_context.session import ChatSession
from rp_context.tokens import TiktokenCounter


class NoBackend:
    """A backend the tests never ask for a reply."""

    name = "none"

    def stream(self, prompt, **kw):  # pragma: no cover - never called
        raise AssertionError("no reply was asked for")


def _open(repo_dir: Path, tmp_path: Path, **kw) -> ChatSession:
    return ChatSession.open(cards=[repo_dir / "cards" / "wren-halloway.json"],
                            chat_path=tmp_path / "c.jsonl", backend=NoBackend(),
                            counter=TiktokenCounter(), **kw)


def test_options_are_a_frozen_checked_value() -> None:
    options = SessionOptions(n_ctx=2048, reserve=100)
    with pytest.raises(ValidationError):
        options.n_ctx = 4096  # type: ignore[misc]
    with pytest.raises(ValidationError):
        SessionOptions(n_ctx=0)
    assert options.replace(reserve=50) == SessionOptions(n_ctx=2048, reserve=50)
    with pytest.raises(ValidationError):
        options.replace(max_tokens=0)


def test_open_runs_as_the_options_say(repo_dir, tmp_path) -> None:
    options = SessionOptions(n_ctx=2048, reserve=300, sampler="deterministic", max_tokens=64,
                             budget="sillytavern", kv_state=False)
    s = _open(repo_dir, tmp_path, options=options)
    assert s.options is options and s.n_ctx == 2048 and s.reserve == 300 and s.kv_state is False
    assert s.setup.sampler.max_tokens == 64 and s.setup.sampler.temperature == 0.0
    assert s.setup.budget == load_setup(None, budget="sillytavern").budget
    report = s.prompt().report
    assert (report.n_ctx, report.reserve) == (2048, 300)


def test_an_option_by_keyword_goes_over_the_options(repo_dir, tmp_path) -> None:
    s = _open(repo_dir, tmp_path, options=SessionOptions(n_ctx=2048, reserve=300), reserve=10)
    assert s.options == SessionOptions(n_ctx=2048, reserve=10)
    with pytest.raises(TypeError, match="n_cxt"):
        _open(repo_dir, tmp_path, n_cxt=2048)


def test_a_bad_sampler_preset_fails_before_a_model_loads(repo_dir, tmp_path) -> None:
    # no backend or counter: had the sampler passed, the missing model file would be the error
    with pytest.raises(PresetError):
        ChatSession.open(cards=[repo_dir / "cards" / "wren-halloway.json"],
                         options=SessionOptions(sampler="no-such-sampler",
                                                model=tmp_path / "missing.gguf"))


def test_apply_changes_what_an_open_chat_can_change(repo_dir, tmp_path) -> None:
    s = _open(repo_dir, tmp_path, options=SessionOptions(n_ctx=2048))
    preset_sampler = s.setup.sampler
    s.apply(s.options.replace(sampler="deterministic", max_tokens=42))
    assert s.setup.sampler.max_tokens == 42 and s.setup.sampler.temperature == 0.0
    s.apply(s.options.replace(sampler=None, max_tokens=None))  # back to the bundle's
    assert s.setup.sampler == preset_sampler
    before = s.options
    with pytest.raises(RPContextError, match="n_ctx"):
        s.apply(before.replace(n_ctx=8192, max_tokens=5))
    assert s.options is before and s.setup.sampler == preset_sampler


@pytest.mark.parametrize("command", ["generate", "render"])
def test_a_bad_option_flag_is_one_line_and_exit_2(command, repo_dir, tmp_path, capsys) -> None:
    chat = tmp_path / "c.jsonl"
    chat.write_text('{"user_name":"User","character_name":"Wren"}\n', encoding="utf-8")
    card = str(repo_dir / "cards" / "wren-halloway.json")
    assert main([command, "--card", card, "--chat", str(chat), "--context", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rp-context: error: --context: ") and "\n" not in err


def test_the_app_settings_and_a_spec_build_the_same_options(repo_dir, tmp_path,
                                                            monkeypatch) -> None:
    monkeypatch.setenv("RP_CONTEXT_HOME", str(tmp_path / "home"))
    from tui.config import Settings
    from tui.sessions import ChatSpec, apply_settings, open_session

    settings = Settings(context=2048, n_gpu_layers=-1, sampler="deterministic", reply_length=80,
                        preset="chatml", summary_server="http://127.0.0.1:9/")
    assert settings.session_options() == SessionOptions(
        n_ctx=2048, n_gpu_layers=-1, sampler="deterministic", max_tokens=80, preset="chatml",
        summary_server="http://127.0.0.1:9/")
    spec = ChatSpec(cards=(str(repo_dir / "cards" / "wren-halloway.json"),), reserve=256,
                    budget="lossless", chat=tmp_path / "c.jsonl")
    s = open_session(spec, settings, backend=NoBackend(), counter=TiktokenCounter())
    assert s.options == settings.session_options().replace(reserve=256, budget="lossless")
    assert s.setup.sampler.max_tokens == 80
    apply_settings(s, settings.model_copy(update={"reply_length": None, "sampler": None,
                                                  "summary_server": None}))
    assert s.setup.sampler == load_setup("chatml").sampler  # the bundle's again
    assert s.options.reserve == 256 and s.options.budget == "lossless"
    assert s.options.summary_server is None and s.summarizer() is s.backend


def test_a_summary_server_flag_that_answers_nothing_leaves_the_chat_whole(repo_dir, tmp_path) -> None:
    """`--summary-server` reaches the session; a server that is not there costs the memory (its
    error is kept for the panel), never the chat."""
    from rp_context.cli import build_parser
    from rp_context.cli._options import session_options

    args = build_parser().parse_args(["generate", "--card", "c.json", "--chat", "c.jsonl",
                                      "--summary-server", "http://127.0.0.1:9"])
    assert session_options(args).summary_server == "http://127.0.0.1:9"
    s = _open(repo_dir, tmp_path, summary_server="http://127.0.0.1:9", n_ctx=2048)
    before = [m.model_dump() for m in s.chat.messages]
    assert s.update_memory(s.prompt(), force=True) is None
    assert "127.0.0.1:9" in (s.memory_error or "") and "not reachable" in s.memory_error
    assert [m.model_dump() for m in s.chat.messages] == before
