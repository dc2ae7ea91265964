"""The command line: `model info`, `generate`, and bad input as one line with exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def rp(*args: str, env: dict[str, str] | None = None, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "rp_context.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env=full_env,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0]


@pytest.mark.model
def test_model_info_default_is_chatml() -> None:
    proc = rp("model", "info")
    assert proc.returncode == 0, proc.stderr
    assert "chatml" in proc.stdout
    assert "SmolLM2-135M-Instruct.Q4_1.gguf" in proc.stdout
    assert "8192" in proc.stdout


def test_model_info_gemma_has_no_template(gemma_path: Path) -> None:
    proc = rp("model", "info", str(gemma_path))
    assert proc.returncode == 0, proc.stderr
    assert "none (no chat template)" in proc.stdout
    assert "warning:" in proc.stdout and "no chat template" in proc.stdout


def test_generate_with_a_file_that_is_not_gguf() -> None:
    proc = rp("generate", "--model", "/etc/hostname", "--message", "Hello")
    assert_one_line_error(proc, "/etc/hostname", "not a GGUF")
    assert proc.stdout == ""


def test_model_env_var_is_checked_too() -> None:
    proc = rp("model", "info", env={"RP_CONTEXT_MODEL": "/nonexistent/x.gguf"})
    assert_one_line_error(proc, "/nonexistent/x.gguf", "not found")


def test_generate_with_a_broken_card(tmp_path: Path) -> None:
    card = tmp_path / "broken.json"
    card.write_text('{"name": "Half', encoding="utf-8")
    before = card.read_bytes()
    proc = rp("generate", "--card", str(card), "--message", "Hi")
    assert_one_line_error(proc, str(card), "invalid JSON")
    assert card.read_bytes() == before


def test_usage_error_exits_2() -> None:
    proc = rp("generate", "--context", "many")
    assert proc.returncode == 2
    assert "--context" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.model
def test_generate_streams_a_reply_from_the_default_model() -> None:
    proc = rp(
        "generate",
        "--card",
        "cards/wren-halloway.json",
        "--message",
        "Hello! What is this place?",
        "--max-tokens",
        "40",
        "--seed",
        "7",
    )
    assert proc.returncode == 0, proc.stderr
    reply = proc.stdout.strip()
    assert len(reply) > 0
    assert "<|im_end|>" not in reply and "<|im_start|>" not in reply


@pytest.mark.model
def test_generate_appends_to_a_chat_file_atomically(tmp_path: Path) -> None:
    import json

    chat = tmp_path / "wren.jsonl"
    args = ["generate", "--card", "cards/wren-halloway.json", "--chat", str(chat), "--max-tokens", "12",
            "--seed", "5", "--json"]
    first = rp(*args, "--message", "Hello there.")
    assert first.returncode == 0, first.stderr
    payload = json.loads(first.stdout)
    assert payload["metrics"]["prompt_tokens"] == payload["prompt"]["tokens"]
    lines = [json.loads(x) for x in chat.read_text(encoding="utf-8").splitlines()]
    assert [m.get("is_user") for m in lines[1:]] == [False, True, False]
    assert lines[2]["mes"] == "Hello there." and lines[3]["mes"] == payload["text"]
    second = rp(*args, "--message", "And the lamp?")
    assert second.returncode == 0, second.stderr
    lines2 = [json.loads(x) for x in chat.read_text(encoding="utf-8").splitlines()]
    assert lines2[:4] == lines[:4] and len(lines2) == 6
    # no temp files left: only the chat and its saved KV state (beside it, in .kvstate/)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".kvstate", "wren.jsonl"]
    assert [p.name for p in (tmp_path / ".kvstate").iterdir()] == ["wren.jsonl.rpkv"]


def test_generate_with_a_truncated_chat_keeps_the_file(tmp_path: Path) -> None:
    chat = tmp_path / "cut.jsonl"
    chat.write_text('{"user_name":"Tess","character_name":"Wren Halloway"}\n{"name":"Tess","is_user":tr',
                    encoding="utf-8")
    before = chat.read_bytes()
    proc = rp("render", "--card", "cards/wren-halloway.json", "--chat", str(chat), "--estimate")
    assert proc.returncode == 0, proc.stderr
    assert "warning:" in proc.stderr and str(chat) in proc.stderr
    assert chat.read_bytes() == before


def test_chat_subcommand_runs_the_app_program() -> None:
    proc = rp("chat", "--help")
    assert proc.returncode == 0, proc.stderr
    assert "rp-chat" in proc.stdout and "--roster" in proc.stdout
