"""`rp-context generate --json` prints one JSON object with the reply and the turn's metrics."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.model


def test_generate_json_prints_the_metrics(repo_dir: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "rp_context.cli", "generate", "--message", "Hello!", "--max-tokens", "12",
         "--seed", "3", "--context", "1024", "--json"],
        capture_output=True, text=True, timeout=300, cwd=repo_dir,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    m = data["metrics"]
    assert m["backend"] == "llama.cpp"
    assert m["prompt_tokens"] > 50 and m["evaluated_tokens"] == m["prompt_tokens"] and m["reused_tokens"] == 0
    assert 0 < m["generated_tokens"] <= 12
    assert m["stop_reason"] in {"eog", "stop_string", "max_tokens"}
    assert m["time_to_first_token_s"] > 0
    assert isinstance(data["text"], str)
