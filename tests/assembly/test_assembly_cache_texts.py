"""AssemblyCache and the texts around the chat: a group turn assembled with the cache of earlier
turns (card, preset and lore texts with their macros expanded once, lore token counts) equals
one assembled afresh after whatever those texts depend on changed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rp_context.assembly import AssembledPrompt, AssemblyCache, assemble
from rp_context.cards import Lorebook, Persona
from rp_context.chat import Chat, ChatHeader, ChatMessage
from rp_context.macros import MacroContext, expand_macros
from rp_context.pipeline import Cast, load_cast
from rp_context.presets.library import load_preset


def _book() -> Lorebook:
    return Lorebook.model_validate({"entries": [
        {"keys": ["kettle"], "content": "{{char}} keeps the kettle hot for {{user}}.", "id": 1},
        {"keys": ["{{user}}"], "content": "{{user}} is known on the Skerry.", "id": 2},
        {"keys": ["lamp"], "content": "The lamp burns for {{group}}.", "id": 3, "constant": True},
    ]})


def _chat(header: bool = True) -> Chat:
    msgs = [ChatMessage(id=str(i), name="Wren Halloway" if i % 2 == 0 else "Sam Ashdown",
                        role="assistant" if i % 2 == 0 else "user", text=f"Line {i}: the kettle, Sam.")
            for i in range(8)]
    head = ChatHeader(user_name="Sam Ashdown", character_name="The Skerry Light",
                      create_date="2026-02-01@20h00m00s") if header else None
    return Chat(header=head, messages=msgs)


@pytest.fixture
def cast(repo_dir: Path) -> Cast:
    c = load_cast([], roster=repo_dir / "cards" / "skerry-light.roster.yaml",
                  persona=repo_dir / "cards" / "sam-ashdown.persona.yaml")
    roster = c.roster.model_copy(update={"generation_mode": "join", "join_prefix": "[{{char}}: <FIELDNAME>]"})
    return type(c)(c.cards, roster, c.persona, [])


def _assemble(cast: Cast, chat: Chat, book: Lorebook, cache: AssemblyCache | None, *,
              persona: Persona | None = None, now: datetime | None = None) -> AssembledPrompt:
    return assemble(cards=cast.cards, chat=chat, instruct=load_preset("chatml", "instruct"),
                    context=load_preset("default", "context"), persona=persona or cast.persona,
                    roster=cast.roster, speaker=cast.names[1], lorebooks=[book], cache=cache, now=now)


def _same(a: AssembledPrompt, b: AssembledPrompt) -> None:
    assert [s.model_dump() for s in a.segments] == [s.model_dump() for s in b.segments]
    assert a.text == b.text
    assert a.warnings == b.warnings


def _describe(cast: Cast, text: str) -> None:
    cast.cards[0].data.description = text


EDITS: dict[str, Callable[[Cast, Chat, Lorebook], Persona | None]] = {
    "a card's description edited": lambda c, _ch, _b: _describe(c, "{{char}} now minds the {{user}}'s boat."),
    "a card's scenario edited": lambda c, _ch, _b: setattr(c.cards[2].data, "scenario", "{{char}} waits."),
    "a member renamed": lambda c, _ch, _b: setattr(c.cards[1].data, "name", "Toby Marrow"),
    "the persona renamed": lambda c, _ch, _b: c.persona.model_copy(update={"name": "Sam Ash"}),
    "the persona's description edited": lambda c, _ch, _b: c.persona.model_copy(
        update={"description": "{{user}} talks to {{char}} softly."}),
    "a lore entry's content edited": lambda _c, _ch, b: setattr(b.entries[0], "content", "{{user}}'s kettle."),
    "a constant entry's content edited": lambda _c, _ch, b: setattr(b.entries[2], "content", "Dark, {{char}}."),
    "the chat's scenario set": lambda _c, ch, _b: ch.header.chat_metadata.update(scenario="{{user}} at sea."),
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_cached_texts_follow_what_they_depend_on(cast: Cast, edit: str) -> None:
    chat, book, cache = _chat(), _book(), AssemblyCache()
    before = _assemble(cast, chat, book, cache)
    _same(before, _assemble(cast, chat, book, cache))
    persona = EDITS[edit](cast, chat, book)
    cached = _assemble(cast, chat, book, cache, persona=persona)
    fresh = _assemble(cast, chat, book, None, persona=persona)
    _same(cached, fresh)
    assert cached.text != before.text  # the edit shows in the prompt


def test_time_and_random_in_card_text_are_not_kept_by_the_cache(cast: Cast) -> None:
    """Without a chat header nothing is frozen: `{{time}}` follows `now` and the cache must not
    keep the first turn's value."""
    _describe(cast, "{{char}} checks the clock: {{time}}, rolls {{roll:d20}}.")
    chat, book, cache = _chat(header=False), _book(), AssemblyCache()
    first = _assemble(cast, chat, book, cache, now=datetime(2026, 3, 1, 9, 5, tzinfo=UTC))
    later = datetime(2026, 3, 1, 17, 40, tzinfo=UTC)
    cached = _assemble(cast, chat, book, cache, now=later)
    _same(cached, _assemble(cast, chat, book, None, now=later))
    assert "5:40 PM" in cached.text and "9:05 AM" in first.text


def test_a_pure_expansion_is_kept_and_a_frozen_one_is_not() -> None:
    memo: dict[tuple[object, ...], str] = {}
    ctx = MacroContext(user="Sam", char="Wren", memo=memo)
    assert expand_macros("{{char}} greets {{user}}.", ctx) == "Wren greets Sam."
    assert list(memo.values()) == ["Wren greets Sam."]
    assert expand_macros("{{random:a,b}} {{pick:c,d}} {{date}}", ctx)
    assert len(memo) == 1
    other = MacroContext(user="Tess", char="Wren", memo=memo)
    assert expand_macros("{{char}} greets {{user}}.", other) == "Wren greets Tess."


@pytest.mark.parametrize("change", [
    {"user": "Tess"}, {"char": "Tobias"}, {"group": "Wren, Tobias"}, {"fields": {"description": "Tall."}},
    {"original": "Be kind."}, {"model": "smol"}, {"mark": ("<", ">")},
])
def test_a_kept_expansion_is_keyed_on_every_value_it_read(change: dict[str, object]) -> None:
    text = "{{char}}/{{user}}/{{group}}/{{description}}/{{original}}/{{model}}"
    memo: dict[tuple[object, ...], str] = {}
    base = {"user": "Sam", "char": "Wren", "fields": {"description": "Short."}, "original": "Be brief."}
    expand_macros(text, MacroContext(**base, memo=memo))  # type: ignore[arg-type]
    ctx = MacroContext(**{**base, **change})  # type: ignore[arg-type]
    assert expand_macros(text, MacroContext(**{**base, **change}, memo=memo)) == expand_macros(text, ctx)  # type: ignore[arg-type]
