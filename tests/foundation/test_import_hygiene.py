"""The library imports neither Textual nor the app, and loads llama_cpp, numpy and httpx only when
a backend or a model is used, so `import rp_context` stays quick and works without a model."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("llama_cpp", "numpy", "httpx", "textual", "tui")


def _run(code: str) -> dict[str, object]:
    """Run `code` in a fresh interpreter (modules already imported here do not count)."""
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=120
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_import_rp_context_loads_no_backend_packages() -> None:
    code = f"""
import json, sys
import rp_context, rp_context.backends
print(json.dumps({{"loaded": [m for m in {HEAVY!r} if m in sys.modules]}}))
"""
    assert _run(code) == {"loaded": []}


def test_backends_load_on_first_use() -> None:
    code = """
import json, sys
import rp_context
before = "httpx" in sys.modules
backend = rp_context.RemoteBackend
print(json.dumps({"before": before, "after": "httpx" in sys.modules,
                  "same": backend is __import__("rp_context.backends.remote").backends.remote.RemoteBackend,
                  "llama": rp_context.LlamaBackend.__module__, "llama_cpp": "llama_cpp" in sys.modules}))
"""
    assert _run(code) == {"before": False, "after": True, "same": True,
                          "llama": "rp_context.backends.llama", "llama_cpp": False}


def test_library_import_is_ui_free_and_model_free() -> None:
    code = """
import json, sys
import rp_context
from rp_context import TiktokenCounter
from rp_context.detect import detect_family
from rp_context.cli import build_parser
build_parser()
n = TiktokenCounter().count("Hello there, traveller.")
print(json.dumps({
    "counted": n > 0,
    "textual": "textual" in sys.modules,
    "tui": "tui" in sys.modules,
    "llama_cpp": "llama_cpp" in sys.modules,
}))
"""
    state = _run(code)
    assert state == {"counted": True, "textual": False, "tui": False, "llama_cpp": False}


@pytest.mark.model
def test_llama_cpp_loads_when_a_model_is_used() -> None:
    code = """
import json, sys
from rp_context import LlamaTokenizer
from rp_context.models import default_model_path
before = "llama_cpp" in sys.modules
tok = LlamaTokenizer(default_model_path())
print(json.dumps({"before": before, "after": "llama_cpp" in sys.modules,
                  "textual": "textual" in sys.modules, "tokens": len(tok.tokenize("hi")) > 0}))
"""
    assert _run(code) == {"before": False, "after": True, "textual": False, "tokens": True}
