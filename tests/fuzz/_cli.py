"""Running `rp-context` as a user would, in a fresh process, for the fuzz tests that need the model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m rp_context.cli ARGS` from the repository root (this checkout's package first)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "rp_context.cli", *args], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=600)
