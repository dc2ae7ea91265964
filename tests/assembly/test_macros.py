"""Macros: SillyTavern's order and semantics, frozen randomness and time, stable picks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from rp_context.errors import TemplateError
from rp_context.macros import MacroContext, expand_macros
from rp_context.storystring import render_handlebars, render_story_string

FIXED = datetime(2026, 3, 7, 21, 5, 9, tzinfo=UTC)


def ctx(**kw) -> MacroContext:
    base = dict(user="Tess", char="Wren", now=lambda: FIXED)
    base.update(kw)
    return MacroContext(**base)


def test_names_and_legacy_tokens() -> None:
    assert expand_macros("{{char}} greets {{USER}}; <BOT> and <USER>", ctx()) == "Wren greets Tess; Wren and Tess"


def test_card_fields_expand_before_names() -> None:
    c = ctx(fields={"description": "{{char}} keeps a light for {{user}}."})
    assert expand_macros("{{description}}", c) == "Wren keeps a light for Tess."


def test_original_only_at_first_occurrence() -> None:
    c = ctx(original="BASE")
    assert expand_macros("{{original}} + {{original}}", c) == "BASE + "


def test_trim_newline_noop_comment() -> None:
    assert expand_macros("a\n\n{{trim}}\nb", ctx()) == "ab"
    assert expand_macros("x{{newline}}y{{noop}}", ctx()) == "x\ny"
    assert expand_macros("keep {{// a\nmulti-line note}}this", ctx()) == "keep this"


def test_unknown_macros_stay() -> None:
    assert expand_macros("{{nosuchmacro}} {{char}}", ctx()) == "{{nosuchmacro}} Wren"


def test_time_macros_use_moment_formats() -> None:
    out = expand_macros("{{time}}|{{date}}|{{weekday}}|{{isotime}}|{{isodate}}", ctx())
    assert out == "9:05 PM|March 7, 2026|Saturday|21:05|2026-03-07"
    assert expand_macros("{{datetimeformat YYYY/MM/DD [at] HH:mm}}", ctx()) == "2026/03/07 at 21:05"
    assert expand_macros("{{time_UTC+2}}", ctx()) == "11:05 PM"


def test_random_and_roll_are_frozen_per_scope() -> None:
    frozen: dict[str, str] = {}
    text = "{{random:a,b,c,d,e,f,g,h}} {{random::1::2::3::4::5::6}} {{roll:3d6}} {{roll 20}}"
    first = expand_macros(text, ctx(frozen=frozen))
    assert len(frozen) == 4
    for _ in range(20):
        assert expand_macros(text, ctx(frozen=frozen)) == first
    a, b, roll, d20 = first.split(" ")
    assert a in "abcdefgh" and b in "123456"
    assert 3 <= int(roll) <= 18 and 1 <= int(d20) <= 20


def test_two_identical_random_macros_freeze_separately() -> None:
    frozen: dict[str, str] = {}
    expand_macros("{{random:1,2,3,4,5,6,7,8,9}} {{random:1,2,3,4,5,6,7,8,9}}", ctx(frozen=frozen))
    assert len(frozen) == 2


def test_unfrozen_random_varies() -> None:
    seen = {expand_macros("{{random:1,2,3,4,5,6,7,8,9,10}}", ctx()) for _ in range(60)}
    assert len(seen) > 1


def test_time_is_frozen_when_stored() -> None:
    frozen: dict[str, str] = {}
    later = datetime(2027, 1, 1, 8, 0, tzinfo=UTC)
    first = expand_macros("{{time}}", ctx(frozen=frozen))
    assert expand_macros("{{time}}", ctx(frozen=frozen, now=lambda: later)) == first == "9:05 PM"
    assert expand_macros("{{time}}", ctx(now=lambda: later)) == "8:00 AM"


def test_pick_is_stable_per_chat_and_varies_across_chats() -> None:
    text = "{{pick::red::green::blue::amber::violet::teal}}"
    one = {expand_macros(text, ctx(chat_id="chat-1")) for _ in range(10)}
    assert len(one) == 1
    across = {expand_macros(text, ctx(chat_id=f"chat-{i}")) for i in range(40)}
    assert len(across) > 1


def test_escaped_comma_in_random() -> None:
    assert expand_macros(r"{{random:a\, b}}", ctx()) == "a, b"


def test_handlebars_blocks() -> None:
    tpl = "{{#if a}}A={{a}}{{#if b}}+B{{else}}-B{{/if}}{{else}}none{{/if}}|{{#unless b}}nob{{/unless}}"
    assert render_handlebars(tpl, {"a": "1", "b": ""}) == "A=1-B|nob"
    assert render_handlebars(tpl, {"a": "", "b": "x"}) == "none|"
    assert render_handlebars("{{char}} {{a}}", {"a": "z"}) == "{{char}} z"


@pytest.mark.parametrize("bad", ["{{#if a}}open", "{{/if}}", "x{{else}}y"])
def test_handlebars_errors(bad: str) -> None:
    with pytest.raises(TemplateError):
        render_handlebars(bad, {"a": "1"})


def test_story_string_default_1_12_6(reference_dir) -> None:
    import json

    tpl = json.loads((reference_dir / "sillytavern/context/Default.json").read_text())["story_string"]
    params = {
        "system": "Be {{char}}.",
        "description": "A keeper.",
        "personality": "dry",
        "scenario": "",
        "persona": "",
        "wiBefore": "",
        "wiAfter": "Lore line.",
    }
    out = render_story_string(tpl, params, ctx(), instruct=True, wrap=True)
    assert out == "Be Wren.\nA keeper.\nWren's personality: dry\nLore line.\n"
