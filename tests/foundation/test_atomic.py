"""Atomic writes leave either the old file or the new one, never half of either."""

from __future__ import annotations

from pathlib import Path

import pytest

from rp_context.atomic import write_bytes_atomic, write_text_atomic


def test_write_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "chat.jsonl"
    target.write_text("old\n")
    write_text_atomic(target, "new ✓\n")
    assert target.read_text(encoding="utf-8") == "new ✓\n"
    assert [p.name for p in tmp_path.iterdir()] == ["chat.jsonl"]


def test_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "card.json"
    target.write_bytes(b"original")

    with pytest.raises(TypeError):
        write_bytes_atomic(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"original"
    assert [p.name for p in tmp_path.iterdir()] == ["card.json"]


def test_creates_parent_directories(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "c.txt"
    write_text_atomic(target, "x")
    assert target.read_text() == "x"
