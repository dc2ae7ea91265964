"""Chats as SillyTavern JSONL: both ways, unknown keys kept, broken lines reported and never lost."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from rp_context.chat import (
    Chat,
    chat_from_text,
    chat_to_text,
    load_chat,
    parse_send_date,
    save_chat,
)
from rp_context.errors import ChatFileError

HEADER = {"user_name": "Sam", "character_name": "Wren", "create_date": "2024-9-28@12h34m56s",
          "chat_metadata": {"note_prompt": "Keep it cosy.", "note_depth": 4, "integrity": "3f1a", "scenario": ""}}
MESSAGES = [
    {"name": "Wren", "is_user": False, "is_system": False, "send_date": "September 28, 2024 12:34pm",
     "mes": "You're awake.", "extra": {}, "swipe_id": 1, "swipes": ["Hello.", "You're awake."],
     "swipe_info": [{"send_date": "x", "extra": {}}, {"send_date": "y", "extra": {}}], "force_avatar": "Wren.png"},
    {"name": "Sam", "is_user": True, "is_system": False, "send_date": "2024-9-28 @12h 35m 01s 120ms",
     "mes": "Where am I?", "extra": {"bias": None}, "force_avatar": "User Avatars/user.png"},
    {"name": "Wren", "is_user": False, "is_system": False, "send_date": "September 28, 2024 12:35pm",
     "mes": "On a rock. *She pours tea.*", "extra": {"api": "textgenerationwebui", "model": "x.gguf", "token_count": 12},
     "swipe_id": 0, "swipes": ["On a rock. *She pours tea.*"], "gen_started": "2024-09-28T11:35:02.000Z",
     "gen_finished": "2024-09-28T11:35:09.000Z"},
    {"name": "System", "is_user": False, "is_system": False, "send_date": 1727523000000,
     "mes": "The storm worsens.", "extra": {"type": "narrator", "isSmallSys": False}},
    {"name": "SillyTavern System", "is_user": False, "is_system": True, "send_date": "September 28, 2024 12:36pm",
     "mes": "hidden note", "extra": {"type": "comment"}},
]


def jsonl(*objs: dict) -> str:
    return "\n".join(json.dumps(o, ensure_ascii=False) for o in objs)


def test_a_sillytavern_chat_loads() -> None:
    loaded = chat_from_text(jsonl(HEADER, *MESSAGES))
    assert loaded.warnings == []
    chat = loaded.chat
    assert (chat.user_name, chat.character_name) == ("Sam", "Wren")
    assert chat.header is not None and chat.header.chat_metadata == HEADER["chat_metadata"]
    roles = [(m.id, m.name, m.role, m.hidden) for m in chat.messages]
    assert roles == [("0", "Wren", "assistant", False), ("1", "Sam", "user", False), ("2", "Wren", "assistant", False),
                     ("3", "System", "system", False), ("4", "SillyTavern System", "assistant", True)]
    first = chat.messages[0]
    assert first.swipes == ["Hello.", "You're awake."] and first.swipe_id == 1 and first.text == "You're awake."
    assert first.model_extra == {"swipe_info": MESSAGES[0]["swipe_info"], "force_avatar": "Wren.png"}


def test_write_gives_sillytavern_back_what_it_wrote() -> None:
    text = chat_to_text(chat_from_text(jsonl(HEADER, *MESSAGES)).chat)
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines[0] == HEADER
    for ours, theirs in zip(lines[1:], MESSAGES, strict=True):
        assert ours.pop("rp_context_id")
        assert ours == theirs
    assert text.endswith("\n")


def test_round_trip_is_stable_and_keeps_ids(tmp_path: Path) -> None:
    path = tmp_path / "chat.jsonl"
    path.write_text(jsonl(HEADER, *MESSAGES), encoding="utf-8")
    loaded = load_chat(path)
    save_chat(loaded, path)
    again = load_chat(path)
    assert again.chat == loaded.chat
    save_chat(again, path)
    assert load_chat(path).chat == again.chat
    assert path.read_text(encoding="utf-8") == chat_to_text(again.chat)


def test_a_line_cut_off_mid_json(tmp_path: Path) -> None:
    path = tmp_path / "crash.jsonl"
    whole = jsonl(HEADER, *MESSAGES[:3])
    cut = json.dumps(MESSAGES[3])[:40]
    path.write_text(whole + "\n" + cut, encoding="utf-8")
    before = path.read_bytes()
    loaded = load_chat(path)
    assert path.read_bytes() == before  # reading never changes the file
    assert len(loaded.chat.messages) == 3
    assert len(loaded.chat.unreadable) == 1 and loaded.chat.unreadable[0].line == 5
    assert loaded.warnings == [f"line 5 is unreadable ({loaded.chat.unreadable[0].reason}); skipped, and kept in the file on save"]
    assert loaded.chat.unreadable[0].reason.startswith("cut off mid-JSON")
    # saving writes the whole messages and keeps the broken line, byte for byte: nothing is cut
    loaded.chat.append("Sam", "user", "Hello?")
    save_chat(loaded, path)
    text = path.read_text(encoding="utf-8")
    assert text.rstrip("\n").endswith(cut)
    assert len(load_chat(path).chat.messages) == 4


def test_broken_lines_in_the_middle_and_bad_bytes(tmp_path: Path) -> None:
    raw = (jsonl(HEADER, MESSAGES[0]) + "\n{not json}\n" + json.dumps(MESSAGES[1]) + "\n").encode() + b"\xff\xfe bad\n[1,2]\n"
    path = tmp_path / "c.jsonl"
    path.write_bytes(raw)
    loaded = load_chat(path)
    assert [m.text for m in loaded.chat.messages] == ["You're awake.", "Where am I?"]
    assert [(u.line, u.reason.split(":")[0]) for u in loaded.chat.unreadable] == [(3, "not valid JSON"), (5, "not UTF-8 text"), (6, "a JSON list, not an object")]
    save_chat(loaded, path)
    assert b"\xff\xfe bad" in path.read_bytes()


def test_windows_line_endings_and_blank_lines() -> None:
    text = jsonl(HEADER, *MESSAGES[:2]).replace("\n", "\r\n\r\n") + "\r\n"
    loaded = chat_from_text(text)
    assert loaded.warnings == [] and len(loaded.chat.messages) == 2


def test_group_chat_without_a_header_stays_without_one() -> None:
    loaded = chat_from_text(jsonl(*MESSAGES[:3]))
    assert loaded.chat.header is None and len(loaded.chat.messages) == 3
    first = json.loads(chat_to_text(loaded.chat).splitlines()[0])
    assert first["mes"] == "You're awake."


def test_unreadable_header_gets_a_new_one() -> None:
    loaded = chat_from_text('{"user_name": "Sam", "charac\n' + jsonl(*MESSAGES[:2]))
    assert loaded.chat.header is not None
    assert any("(the header) is unreadable" in w for w in loaded.warnings)


def test_nothing_readable_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text("not a chat at all\n", encoding="utf-8")
    with pytest.raises(ChatFileError, match=r"x\.jsonl: not a SillyTavern JSONL chat: line 1"):
        load_chat(path)
    path.write_text("", encoding="utf-8")
    with pytest.raises(ChatFileError, match="empty"):
        load_chat(path)
    with pytest.raises(ChatFileError, match="not found"):
        load_chat(tmp_path / "missing.jsonl")


def test_ids_are_kept_unique_and_new_ones_follow() -> None:
    msgs = [dict(MESSAGES[1], rp_context_id="7"), dict(MESSAGES[1], rp_context_id="7"), dict(MESSAGES[1])]
    loaded = chat_from_text(jsonl(HEADER, *msgs))
    ids = [m.id for m in loaded.chat.messages]
    assert ids[0] == "7" and len(set(ids)) == 3
    assert any("used twice" in w for w in loaded.warnings)
    assert loaded.chat.append("Wren", "assistant", "Hi").id == "8"


def test_new_chat_append_and_swipes(tmp_path: Path) -> None:
    chat = Chat.new("Wren", "Sam")
    a = chat.append("Wren", "assistant", "Welcome.", swipes=["Hello.", "Welcome."])
    assert (a.id, a.swipe_id, a.text) == ("0", 1, "Welcome.")
    u = chat.append("Sam", "user", "Thanks.")
    assert u.swipes is None and u.timestamp is not None
    a.add_swipe("Ahoy.")
    assert (a.text, a.swipe_id, len(a.swipes or [])) == ("Ahoy.", 2, 3)
    a.select_swipe(0)
    assert a.text == "Hello."
    narrator = chat.append("System", "system", "Night falls.")
    out = json.loads(chat_to_text(chat).splitlines()[-1])
    assert out["extra"]["type"] == "narrator" and out["is_user"] is False
    path = tmp_path / "new.jsonl"
    save_chat(chat, path)
    assert load_chat(path).chat == chat
    assert narrator.role == "system"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("June 19, 2023 2:20pm", dt.datetime(2023, 6, 19, 14, 20)),
        ("December 1, 2024 12:05am", dt.datetime(2024, 12, 1, 0, 5)),
        ("2024-7-12@01h31m37s", dt.datetime(2024, 7, 12, 1, 31, 37, tzinfo=dt.UTC)),
        ("2024-6-5 @14h 56m 50s 682ms", dt.datetime(2024, 6, 5, 14, 56, 50, 682000, tzinfo=dt.UTC)),
        (1681234567890, dt.datetime(2023, 4, 11, 17, 36, 7, 890000, tzinfo=dt.UTC)),
        ("1681234567890", dt.datetime(2023, 4, 11, 17, 36, 7, 890000, tzinfo=dt.UTC)),
        ("2024-09-28T11:35:02.000Z", dt.datetime(2024, 9, 28, 11, 35, 2, tzinfo=dt.UTC)),
        ("", None),
        ("yesterday", None),
    ],
)
def test_every_sillytavern_timestamp(value: object, expected: dt.datetime | None) -> None:
    assert parse_send_date(value) == expected
