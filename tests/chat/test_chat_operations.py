"""The chat's own operations, which the session and the app use: ids, greetings as swipes, edits,
swipe browsing with each swipe's reasoning, continue, delete, the muted list in the metadata."""

from __future__ import annotations

import pytest

from rp_context.chat import Chat, ChatHeader, Opening, chat_from_text, chat_to_text
from rp_context.errors import RPContextError


def _chat() -> Chat:
    return Chat(header=ChatHeader(user_name="Tess", character_name="Wren"))


def test_a_new_chat_opens_with_greetings_as_swipes() -> None:
    chat = _chat()
    chat.start([Opening("Wren", ["Hello.", "Evening.", "Out of the rain."], 1),
                Opening("Absalom", ["Hm."], 5), Opening("Nobody", [])])
    wren, absalom = chat.messages
    assert (wren.id, wren.text, wren.swipes, wren.swipe_id) == (
        "0", "Evening.", ["Hello.", "Evening.", "Out of the rain."], 1)
    assert (absalom.id, absalom.text, absalom.swipe_id) == ("1", "Hm.", 0)  # clamped
    assert wren.role == "assistant" and wren.timestamp is not None
    chat.start([Opening("Wren", ["Again."])])  # starting over replaces the messages
    assert [m.text for m in chat.messages] == ["Again."]


def test_message_and_delete_name_a_missing_id() -> None:
    chat = _chat()
    msg = chat.append("Tess", "user", "Hi.")
    assert chat.message(msg.id) is msg and chat.find("nope") is None
    with pytest.raises(RPContextError, match="'nope'"):
        chat.message("nope")
    with pytest.raises(RPContextError):
        chat.delete("nope")
    chat.delete(msg.id)
    assert chat.messages == []


def test_each_swipe_keeps_its_own_reasoning_through_a_save() -> None:
    chat = _chat()
    msg = chat.append("Wren", "assistant", "First.")
    msg.set_reasoning("first thought", duration_s=1.5)
    msg.add_swipe("Second.")
    msg.set_reasoning("", duration_s=None)  # the second swipe has none
    msg = chat_from_text(chat_to_text(chat)).chat.messages[0]
    assert (msg.text, msg.reasoning) == ("Second.", "")
    assert msg.step_swipe(-1) is True
    assert (msg.text, msg.reasoning, msg.reasoning_duration) == ("First.", "first thought", 1.5)
    assert msg.step_swipe(-1) is False and msg.text == "First."
    assert msg.step_swipe(+1) is True and (msg.text, msg.reasoning) == ("Second.", "")


def test_edits_and_continues_change_the_selected_swipe() -> None:
    msg = _chat().append("Wren", "assistant", "Aye.", swipes=["Nay.", "Aye."])
    msg.set_text("Aye, sit.")
    assert msg.swipes == ["Nay.", "Aye, sit."]
    msg.set_reasoning("she thinks", duration_s=2)
    msg.extend(" Closer.", " more", duration_s=1)
    assert msg.text == "Aye, sit. Closer." and msg.swipes == ["Nay.", "Aye, sit. Closer."]
    assert (msg.reasoning, msg.reasoning_duration) == ("she thinks more", 3.0)
    msg.edit_reasoning("  rewritten  ")
    assert (msg.reasoning, msg.reasoning_type) == ("rewritten", "edited")


def test_the_muted_list_lives_in_the_metadata() -> None:
    chat = _chat()
    assert chat.muted is None
    chat.keep_muted(["Absalom Pike"])
    again = chat_from_text(chat_to_text(chat)).chat
    assert again.muted == ["Absalom Pike"]
    headless = Chat()
    headless.keep_muted(["Absalom Pike"])  # a SillyTavern group chat has no header to keep it
    assert headless.muted is None
