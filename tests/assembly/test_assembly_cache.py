"""AssemblyCache: a prompt assembled with the cache of earlier turns equals one assembled afresh,
whatever happened to the chat in between (new turns, edits, swipes, hidden messages, renames)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from rp_context.assembly import AssembledPrompt, AssemblyCache, assemble
from rp_context.cards import Card, Persona
from rp_context.chat import Chat, ChatHeader, ChatMessage
from rp_context.memory import MEMORY_KEY
from rp_context.presets.library import load_preset


def _card() -> Card:
    return Card.model_validate({"spec": "chara_card_v2", "spec_version": "2.0", "data": {
        "name": "Wren", "description": "A keeper of {{user}}'s light.",
        "mes_example": "<START>\n{{user}}: Hi.\n{{char}}: Evening."}})


def _chat(n: int = 12) -> Chat:
    msgs = [ChatMessage(id=str(i), name="Wren" if i % 2 == 0 else "Tess",
                        role="assistant" if i % 2 == 0 else "user", text=f"Line {i} of the talk.")
            for i in range(n)]
    return Chat(header=ChatHeader(user_name="Tess", character_name="Wren",
                                  create_date="2026-01-01@10h00m00s"), messages=msgs)


def _assemble(chat: Chat, cache: AssemblyCache | None, persona: Persona | None = None, *,
              reasoning: dict[str, object] | None = None) -> AssembledPrompt:
    instruct = load_preset("chatml", "instruct")
    if reasoning:
        instruct = instruct.model_copy(update={"reasoning": instruct.reasoning.model_copy(update=reasoning)})
    return assemble(cards=[_card()], chat=chat, instruct=instruct,
                    context=load_preset("default", "context"), persona=persona, cache=cache)


def _add(chat: Chat, role: str, text: str) -> None:
    chat.messages.append(ChatMessage(id=str(len(chat.messages) + 100), role=role, text=text,
                                     name="Tess" if role == "user" else "Wren"))


def _swipe(chat: Chat) -> None:
    last = chat.messages[-1]
    last.swipes = [last.text, "Another take on it."]
    last.select_swipe(1)


def _replace_then_edit(chat: Chat) -> None:
    """A caller that swaps a message for an equal copy and edits the copy in place."""
    chat.messages[3] = chat.messages[3].model_copy(deep=True)
    chat.messages[3].text = "Edited copy."


EDITS: dict[str, Callable[[Chat], None]] = {
    "a new turn": lambda c: (_add(c, "user", "Well?"), _add(c, "assistant", "Well what.")),
    "an edit in the middle": lambda c: setattr(c.messages[5], "text", "Changed line."),
    "an edit of the newest": lambda c: setattr(c.messages[-1], "text", "Changed newest."),
    "a swipe": _swipe,
    "the last reply deleted": lambda c: c.messages.pop(),
    "a hidden message": lambda c: setattr(c.messages[3], "hidden", True),
    "a renamed speaker": lambda c: setattr(c.messages[4], "name", "Wren the Elder"),
    "a changed role": lambda c: setattr(c.messages[6], "role", "system"),
    "a message with macros": lambda c: _add(c, "user", "{{user}} rolls {{roll:d6}} at {{time}}."),
    "a carriage return": lambda c: setattr(c.messages[2], "text", "Two\r\nlines."),
    "a repeated id": lambda c: c.messages.append(c.messages[1].model_copy(update={"text": "Echo."})),
    "a reply with an inline block": lambda c: _add(c, "assistant", "<think>\nHm.\n</think>\n\nSure."),
    "an old reply given a block": lambda c: setattr(c.messages[4], "text", "<think>x</think>Old."),
    "stored reasoning": lambda c: c.messages[-1].set_reasoning("Weighing it.") if c.messages[-1].role
    == "assistant" else c.messages[-2].set_reasoning("Weighing it."),
    "a message deleted in the middle": lambda c: c.messages.pop(len(c.messages) // 2),
    "a hidden message shown again": lambda c: [setattr(m, "hidden", False) for m in c.messages],
    "an id changed": lambda c: setattr(c.messages[1], "id", "renumbered"),
    "a summary stored on an old message": lambda c: c.messages[2].extra.update({MEMORY_KEY: "They met."}),
    "a message replaced by its copy, then edited": _replace_then_edit,
}


def _same(a: AssembledPrompt, b: AssembledPrompt) -> None:
    assert [s.model_dump() for s in a.segments] == [s.model_dump() for s in b.segments]
    assert a.text == b.text
    assert a.warnings == b.warnings
    assert a.memories == b.memories


@pytest.mark.parametrize("edit", list(EDITS))
def test_cached_turn_equals_a_fresh_one(edit: str) -> None:
    chat = _chat()
    cache = AssemblyCache()
    _assemble(chat, cache)
    _add(chat, "user", "One more.")
    _assemble(chat, cache)
    EDITS[edit](chat)
    _same(_assemble(chat, cache), _assemble(chat, None))
    for other in EDITS.values():  # and every edit after it, in turn
        other(chat)
        _same(_assemble(chat, cache), _assemble(chat, None))


def test_a_new_user_name_renames_the_cached_user_turns() -> None:
    chat = _chat()
    cache = AssemblyCache()
    for m in chat.messages:
        m.name = "" if m.role == "user" else m.name
    before = _assemble(chat, cache)
    after = _assemble(chat, cache, persona=Persona(name="Ada"))
    assert before.by_id("msg:1").name == "Tess"
    assert after.by_id("msg:1").name == "Ada"
    _same(after, _assemble(chat, None, persona=Persona(name="Ada")))


def test_unchanged_messages_keep_their_segments_across_turns() -> None:
    chat = _chat()
    cache = AssemblyCache()
    first = _assemble(chat, cache)
    _add(chat, "user", "Still there?")
    second = _assemble(chat, cache)
    fresh = _assemble(chat, None)
    assert second.by_id("msg:0") is first.by_id("msg:0")
    assert second.by_id("msg:5") is first.by_id("msg:5")
    assert fresh.by_id("msg:0") is not first.by_id("msg:0")


@pytest.mark.parametrize("reasoning", [{"add_to_prompt": 2}, {"parse": False}, {"add_to_prompt": 1, "parse": False},
                                       {"thinking": False, "off_switch": " /no_think"}])
def test_a_cached_turn_follows_the_reasoning_rules(reasoning: dict[str, object]) -> None:
    chat = _chat()
    chat.messages[2].text = "<think>\nOld thought.\n</think>\n\nLine 2."
    chat.messages[4].set_reasoning("Stored thought.")
    cache = AssemblyCache()
    _assemble(chat, cache)  # the cache's texts were stripped under the default rules
    _same(_assemble(chat, cache, reasoning=reasoning), _assemble(chat, None, reasoning=reasoning))
    for edit in ("a reply with an inline block", "stored reasoning", "a new turn", "an old reply given a block"):
        EDITS[edit](chat)
        _same(_assemble(chat, cache, reasoning=reasoning), _assemble(chat, None, reasoning=reasoning))
        _same(_assemble(chat, cache), _assemble(chat, None))


def test_what_the_reasoning_rules_add_to_one_turn_is_gone_the_next() -> None:
    """The thinking switch rides on the newest user message and stored reasoning on the newest
    reply only: a cached turn after new messages carries them on the new ones alone."""
    reasoning = {"thinking": False, "off_switch": " /no_think", "add_to_prompt": 1}
    chat = _chat()
    chat.messages[-2].set_reasoning("Weighing it.")
    cache = AssemblyCache()
    for step in range(4):
        got = _assemble(chat, cache, reasoning=reasoning)
        _same(got, _assemble(chat, None, reasoning=reasoning))
        switched = [s.message_id for s in got.segments if s.text.endswith(" /no_think")]
        newest_user = next(m.id for m in reversed(chat.messages) if m.role == "user")
        assert switched == [newest_user]
        _add(chat, "user", f"Turn {step}?")
        _add(chat, "assistant", f"Answer {step}.")
        chat.messages[-1].set_reasoning(f"Thought {step}.")


def test_summaries_are_found_when_a_message_has_no_extra_dict() -> None:
    """A message whose `extra` was replaced by something else is passed over, on a cached turn
    as on a fresh one, and the summaries on the others still count; hidden ones never do."""
    chat = _chat()
    cache = AssemblyCache()
    _assemble(chat, cache)
    chat.messages[2].extra[MEMORY_KEY] = "They met."
    chat.messages[5].extra[MEMORY_KEY] = "They parted."
    chat.messages[5].hidden = True
    chat.messages[3].extra = None  # type: ignore[assignment]
    cached, fresh = _assemble(chat, cache), _assemble(chat, None)
    _same(cached, fresh)
    assert [m.text for m in cached.memories] == ["They met."]
