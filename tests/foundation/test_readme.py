"""The README's library examples run as written, each in a fresh interpreter, and use only names
the package exports (`rp_context.__all__`)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

import rp_context

REPO = Path(__file__).resolve().parents[2]
BLOCKS = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(encoding="utf-8"), re.S)
NEEDS_MODEL = ("LlamaTokenizer", "ChatSession", "LlamaBackend", "resolve_model")


def _cases() -> list[object]:
    cases = []
    for i, code in enumerate(BLOCKS):
        marks = [pytest.mark.model] if any(name in code for name in NEEDS_MODEL) else []
        cases.append(pytest.param(code, id=f"block{i + 1}", marks=marks))
    return cases


def test_the_readme_has_library_examples() -> None:
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("code", _cases())
def test_readme_example_imports_only_public_names(code: str) -> None:
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.ImportFrom) and node.module == "rp_context":
            assert {a.name for a in node.names} <= set(rp_context.__all__)


@pytest.mark.parametrize("code", _cases())
def test_readme_example_runs(code: str, tmp_path: Path) -> None:
    (tmp_path / "cards").symlink_to(REPO / "cards")  # the examples name the shipped sample cards
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()
