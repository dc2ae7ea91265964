"""`generate` fits the prompt before it saves the user's message: a refusal writes nothing, and a
chat that a macro once broke still renders and generates (issue 17), with the real model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _cli import run_cli

pytestmark = pytest.mark.model


def _chat(path: Path) -> bytes:
    header = {"user_name": "User", "character_name": "Wren", "create_date": "2024-01-01@00h00m00s",
              "chat_metadata": {}}
    first = {"name": "Wren", "is_user": False, "mes": "Hello.", "send_date": "2024-01-01"}
    path.write_text(json.dumps(header) + "\n" + json.dumps(first) + "\n")
    return path.read_bytes()


def test_a_refusal_writes_nothing(tmp_path: Path, smollm_path: Path) -> None:
    card = tmp_path / "big.json"
    card.write_text(json.dumps({"name": "Wren", "description": "The lighthouse keeper. " * 600,
                                "first_mes": "Hello."}))
    chat = tmp_path / "chat.jsonl"
    before = _chat(chat)
    for _ in range(2):  # a retry does not append a second copy either
        proc = run_cli("generate", "--card", str(card), "--chat", str(chat), "--context", "1024",
                    "--model", str(smollm_path), "--max-tokens", "4", "-m", "Are you there?")
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert chat.read_bytes() == before


def test_a_bricking_macro_is_text_and_the_chat_goes_on(tmp_path: Path, smollm_path: Path) -> None:
    card = tmp_path / "w.json"
    card.write_text(json.dumps({"name": "Wren", "description": "Keeper.", "first_mes": "Hello."}))
    chat = tmp_path / "chat.jsonl"
    _chat(chat)
    bad = "{{time_UTC+99999999}} {{roll:1d" + "9" * 5000 + "}}"
    for message in (bad, "And now?"):
        proc = run_cli("generate", "--card", str(card), "--chat", str(chat), "--model", str(smollm_path),
                    "--max-tokens", "4", "--seed", "1", "-m", message)
        assert proc.returncode == 0, proc.stderr
    lines = [json.loads(x) for x in chat.read_text().splitlines()[1:]]
    users = [x["mes"] for x in lines if x.get("is_user")]
    assert users == [bad, "And now?"]  # each once, never duplicated
    proc = run_cli("render", "--card", str(card), "--chat", str(chat), "--preset", "chatml")
    assert proc.returncode == 0 and "{{time_UTC+99999999}}" in proc.stdout, proc.stderr
