"""A GGUF whose own chat template is broken or hostile still loads: llama-cpp-python would compile
(and fold) it while loading the model; rp-context checks it first, warns, and falls back."""

from __future__ import annotations

from pathlib import Path

import pytest
from _cli import run_cli
from _gguf import with_metadata_string

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.model


@pytest.mark.parametrize(("template", "why"), [
    ("{% for m in messages %}{{ m.content }}{% endfor", "syntax"),
    ("{{ 9**(9**10) }}{% for m in messages %}{{ m.content }}{% endfor %}", "4096-bit"),
])
def test_model_with_a_hostile_template_still_loads(tmp_path: Path, smollm_path: Path, template: str,
                                                   why: str) -> None:
    model = with_metadata_string(smollm_path, tmp_path / "hostile.gguf", "tokenizer.chat_template", template)
    info = run_cli("model", "info", str(model))
    assert info.returncode == 0, info.stderr
    assert "Traceback" not in info.stderr
    card = REPO / "cards" / "wren-halloway.json"
    chat = tmp_path / "c.jsonl"
    chat.write_text('{"user_name": "User", "character_name": "Wren", "create_date": "x", "chat_metadata": {}}\n'
                    '{"name": "User", "is_user": true, "mes": "Hello?", "send_date": "x"}\n')
    proc = run_cli("render", "--card", str(card), "--chat", str(chat), "--model", str(model), "--json")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    check = run_cli("template", "check", str(model))
    assert why in check.stdout + check.stderr, check.stdout + check.stderr
