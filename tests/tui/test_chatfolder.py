"""The library side of the chat browser: listing reads name, count and last line without loading
whole chats; renaming refuses bad or taken names; branches name their parent; the author's note
round-trips through SillyTavern's chat-metadata keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rp_context.assembly import AuthorNote
from rp_context.chat import Chat, ChatHeader, ChatMessage, chat_to_text, load_chat, save_chat
from rp_context.chatfolder import (
    PARENT_KEY,
    author_note_of,
    branch_chat,
    chat_info,
    delete_chat,
    latest_chat,
    list_chats,
    new_chat_path,
    rename_chat,
    set_author_note,
)
from rp_context.errors import ChatFileError


def _chat(n: int) -> Chat:
    msgs = [ChatMessage(id=str(i), name="Wren" if i % 2 else "User",
                        role="assistant" if i % 2 else "user", text=f"line  {i}\nmore")
            for i in range(n)]
    return Chat(header=ChatHeader(user_name="User", character_name="Wren", create_date="x"),
                messages=msgs)


def test_listing_counts_and_last_line(tmp_path: Path) -> None:
    a = save_chat(_chat(5), tmp_path / "a.jsonl")
    b = tmp_path / "b.jsonl"
    # a SillyTavern group chat has no header line; a broken line is not a message
    b.write_text(chat_to_text(Chat(messages=_chat(3).messages)) + '{"cut off\n', encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not a chat", encoding="utf-8")
    info = chat_info(a)
    assert (info.name, info.messages, info.last_speaker, info.last_line) == ("a", 5, "User",
                                                                           "line 4 more")
    assert chat_info(b).messages == 3
    assert chat_info(b).last_line == "line 2 more"
    assert {c.path for c in list_chats(tmp_path)} == {a, b}
    assert latest_chat(tmp_path) in (a, b)
    assert list_chats(tmp_path / "missing") == [] and latest_chat(tmp_path / "missing") is None


def test_new_names_never_collide(tmp_path: Path) -> None:
    import datetime as dt

    when = dt.datetime(2024, 7, 12, 1, 31, 37)
    first = new_chat_path(tmp_path, "Wren: the/keeper", when)
    assert first.name == "Wren_ the_keeper - 2024-07-12@01h31m37s.jsonl"
    first.write_text("{}", encoding="utf-8")
    assert new_chat_path(tmp_path, "Wren: the/keeper", when).name.endswith("(2).jsonl")


def test_rename_and_delete(tmp_path: Path) -> None:
    a = save_chat(_chat(2), tmp_path / "a.jsonl")
    b = save_chat(_chat(2), tmp_path / "b.jsonl")
    with pytest.raises(ChatFileError, match="exists already"):
        rename_chat(a, "b")
    with pytest.raises(ChatFileError, match="cannot be a chat name"):
        rename_chat(a, "../escape")
    moved = rename_chat(a, "The storm night.jsonl")
    assert moved == tmp_path / "The storm night.jsonl" and moved.exists() and not a.exists()
    delete_chat(b)
    assert not b.exists()
    delete_chat(b)  # already gone: nothing to do


def test_branch_keeps_messages_up_to_the_one_chosen(tmp_path: Path) -> None:
    chat = _chat(6)
    chat.messages[2].extra["keep"] = {"x": 1}
    before = chat_to_text(chat)
    branch = branch_chat(chat, "2", parent="Wren - 2024-07-12@01h31m37s")
    assert [m.id for m in branch.messages] == ["0", "1", "2"]
    assert branch.messages[2].extra == {"keep": {"x": 1}}
    assert branch.header.chat_metadata[PARENT_KEY] == "Wren - 2024-07-12@01h31m37s"
    assert chat_to_text(chat) == before  # the original is unchanged
    path = save_chat(branch, tmp_path / "Branch #2.jsonl")
    header = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
    assert header["chat_metadata"]["main_chat"] == "Wren - 2024-07-12@01h31m37s"
    with pytest.raises(ChatFileError):
        branch_chat(chat, "99", parent="x")


def test_author_note_in_sillytavern_keys(tmp_path: Path) -> None:
    chat = _chat(1)
    assert author_note_of(chat) == AuthorNote()
    set_author_note(chat, AuthorNote(text="Rain.", depth=2, interval=3, role="user"))
    meta = chat.header.chat_metadata
    assert (meta["note_prompt"], meta["note_depth"], meta["note_interval"], meta["note_role"]) == (
        "Rain.", 2, 3, 1)
    again = load_chat(save_chat(chat, tmp_path / "n.jsonl")).chat
    assert author_note_of(again) == AuthorNote(text="Rain.", depth=2, interval=3, role="user")
    # what SillyTavern may leave: numbers as strings, a bad role, a negative depth
    chat.header.chat_metadata.update(note_depth="6", note_role=9, note_interval=-1)
    assert author_note_of(chat) == AuthorNote(text="Rain.")
