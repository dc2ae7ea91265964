"""KV state files without a model: the chat's state path, the folder's size bound, headers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rp_context.backends.kvstate import (
    KVStateHeader,
    KVStateMismatch,
    chat_state_path,
    prune,
    read_state,
    write_state,
)
from rp_context.backends.persist import chat_key
from rp_context.backends.slots import slot_filename


def test_state_lives_beside_the_chat(tmp_path: Path) -> None:
    chat = tmp_path / "chats" / "Wren - 2026-11-29.jsonl"
    assert chat_state_path(chat) == tmp_path / "chats" / ".kvstate" / "Wren - 2026-11-29.jsonl.rpkv"


def test_prune_drops_the_oldest_states_first_and_never_the_new_one(tmp_path: Path) -> None:
    paths = []
    for i in range(5):
        p = tmp_path / f"c{i}.jsonl.rpkv"
        p.write_bytes(b"x" * 1000)
        os.utime(p, (1_000_000 + i, 1_000_000 + i))
        paths.append(p)
    other = tmp_path / "notes.txt"
    other.write_bytes(b"y" * 5000)  # not a state: never touched
    newest = paths[0]  # just written, though its mtime is old here
    removed = prune(tmp_path, 2500, keep=newest)
    assert removed == paths[1:4]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c0.jsonl.rpkv", "c4.jsonl.rpkv", "notes.txt"]
    assert prune(tmp_path, 10_000) == []


def test_header_mismatch_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "s.rpkv"
    header = KVStateHeader(model="m.gguf:1:ab", n_ctx=2048, type_k=1, type_v=1, flash_attn=False,
                           tokens=[1, 2, 3])
    write_state(path, header, b"state-bytes")
    got, data = read_state(path, {"model": "m.gguf:1:ab", "flash_attn": False})
    assert got.tokens == [1, 2, 3] and data == b"state-bytes"
    with pytest.raises(KVStateMismatch, match="flash_attn is False, this backend has True"):
        read_state(path, {"flash_attn": True})
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(KVStateMismatch, match="truncated"):
        read_state(path, {})


def test_server_names_are_file_safe_and_distinct(tmp_path: Path) -> None:
    a = chat_key(tmp_path / "a" / "Wren & Tess: night 1.jsonl")
    b = chat_key(tmp_path / "b" / "Wren & Tess: night 1.jsonl")
    assert a != b  # same file name in two folders: two slot files
    for key in (a, b):
        name = slot_filename(key)
        assert name.endswith(".slot") and "/" not in name and " " not in name and ":" not in name
