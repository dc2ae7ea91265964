"""Never worse than SillyTavern: whatever the policy, the newest user message and the turns that
fit after the pinned top are kept, and a low-water mark below the pinned top is clamped."""

from __future__ import annotations

import json

import pytest

from rp_context.chat import save_chat
from rp_context.cli import main
from rp_context.synth import synthetic_chat


def _render(repo_dir, chat_path, capsys, *extra: str) -> dict:
    rc = main(["render", "--card", str(repo_dir / "cards" / "wren-halloway.json"), "--chat",
               str(chat_path), "--context", "1024", "--json", *extra])
    out = capsys.readouterr().out
    assert rc == 0
    return json.loads(out)


def _check_keeps_newest(d: dict, chat) -> None:
    last_user = next(m for m in reversed(chat.messages) if m.role == "user")
    assert last_user.id not in d["dropped"]
    assert last_user.text in d["text"]
    kept = [m for m in chat.messages if m.id not in d["dropped"]]
    assert kept, "the history was emptied"
    # the kept messages are the newest ones, in order
    assert [m.id for m in chat.messages[-len(kept):]] == [m.id for m in kept]


@pytest.mark.parametrize("budget", ["cache-stable", "lossless", "sillytavern"])
def test_render_at_1024_keeps_the_users_message(repo_dir, tmp_path, capsys, budget) -> None:
    chat = synthetic_chat(40, seed=1)
    path = tmp_path / "chat.jsonl"
    save_chat(chat, path)
    d = _render(repo_dir, path, capsys, "--estimate", "--budget", budget)
    _check_keeps_newest(d, chat)
    assert d["tokens"] <= 1024 - d["reserve"]
    r = d["retention"]
    assert r["turns_evicted"] == len(d["dropped"]) > 0
    if budget != "sillytavern":
        # the Wren card's top is above half the budget: the low-water mark is clamped above it
        assert r["low_water_clamped"] is True
        assert r["low_water"] > d["tokens"] - d["sections"].get("history", 0)
        # and the history keeps at least one round after the user's message
        assert len(chat.messages) - len(d["dropped"]) >= 2


@pytest.mark.model
def test_render_reproduction_with_the_model(repo_dir, tmp_path, capsys) -> None:
    chat = synthetic_chat(40, seed=1)
    path = tmp_path / "chat.jsonl"
    save_chat(chat, path)
    d = _render(repo_dir, path, capsys)
    assert d["tokenizer"] == "exact"
    _check_keeps_newest(d, chat)


def test_the_default_keeps_every_turn_that_fits(repo_dir, tmp_path, capsys) -> None:
    """The issue's reproduction: the default policy keeps what SillyTavern's trimming keeps (every
    turn that fits after the pinned top), and says it evicts by context shift."""
    chat = synthetic_chat(40, seed=1)
    path = tmp_path / "chat.jsonl"
    save_chat(chat, path)
    default = _render(repo_dir, path, capsys, "--estimate")
    st = _render(repo_dir, path, capsys, "--estimate", "--budget", "sillytavern")
    _check_keeps_newest(default, chat)
    assert len(default["dropped"]) <= len(st["dropped"])
    assert default["retention"]["eviction"] == "shift"
    assert default["retention"]["window_fill"] >= 0.9
