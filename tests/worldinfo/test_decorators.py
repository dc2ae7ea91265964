"""V3 decorators (ecosystem.md §1.5): parsed from the start of the content, applied, stripped."""

from __future__ import annotations

from _wi import book, chat, entry, fired_uids, scan, status

from rp_context.worldinfo import parse_decorators


def test_parse_and_strip():
    deco, text = parse_decorators("@@depth 3\n@@role user\nThe text.\n@@not_a_decorator")
    assert (deco.depth, deco.role) == (3, "user")
    assert text == "The text.\n@@not_a_decorator"
    deco, text = parse_decorators("Text first\n@@depth 3")
    assert deco.depth is None and text == "Text first\n@@depth 3"
    _, text = parse_decorators("@@activate\r\n\nBody")
    assert text == "Body"
    deco, text = parse_decorators("@@activate")
    assert deco.activate and text == ""


def test_fallbacks():
    # Unknown decorator: its @@@ fallback applies.
    deco, _ = parse_decorators("@@activate_only_after 3\n@@@activate\nx")
    assert deco.activate
    # Known decorator: the fallback is skipped.
    deco, _ = parse_decorators("@@depth 2\n@@@depth 5\nx")
    assert deco.depth == 2
    # An invalid value counts as unrecognised; chains continue until one applies.
    deco, _ = parse_decorators("@@role narrator\n@@@role villain\n@@@role assistant\n@@@role user\nx")
    assert deco.role == "assistant"


def test_first_wins_but_additional_keys_repeat():
    deco, _ = parse_decorators("@@depth 1\n@@depth 9\n@@additional_keys a, b\n@@additional_keys c\nx")
    assert deco.depth == 1
    assert deco.additional_keys == ["a", "b", "c"]


def test_depth_and_role_decorators_place_the_entry():
    r = scan(book(entry(1, ["k"], "@@depth 2\n@@role assistant\nInjected.")), chat("k"))
    (fired,) = r.at_depth
    assert (fired.depth, fired.role, fired.content) == (2, "assistant", "Injected.")


def test_position_decorator_beats_depth():
    r = scan(book(entry(1, ["k"], "@@depth 2\n@@position after_desc\nAfter.")), chat("k"))
    assert [e.content for e in r.after] == ["After."] and r.at_depth == []


def test_activate_and_dont_activate():
    lore = book(
        entry(1, [], "@@activate\nForced."),
        entry(2, ["k"], "@@dont_activate\nNever."),
        entry(3, ["k"], "@@dont_activate\n@@activate\nActivate wins."),
    )
    r = scan(lore, chat("k"))
    assert fired_uids(r) == {1, 3}
    assert status(r, 2) == "disabled" and "@@dont_activate" in r.decision("Test.2").reason
    assert r.decision("Test.1").reason == "@@activate decorator"


def test_scan_depth_decorator():
    lore = book(entry(1, ["lamp"], "@@scan_depth 3\nLamps."))
    assert status(scan(lore, chat("a lamp", "x", "y")), 1) == "fired"
    assert status(scan(lore, chat("a lamp", "x", "y", "z")), 1) == "no_match"


def test_additional_and_exclude_keys():
    lore = book(
        entry(1, ["sword"], "@@additional_keys fire, ice\nElemental."),
        entry(2, ["sword"], "@@exclude_keys rust\nShiny."),
    )
    assert fired_uids(scan(lore, chat("a sword of ice"))) == {1, 2}
    r = scan(lore, chat("a rust sword"))
    assert status(r, 1) == "secondary_failed" and status(r, 2) == "secondary_failed"
    assert "'rust'" in r.decision("Test.2").reason


def test_decorators_can_be_turned_off():
    r = scan(book(entry(1, ["k"], "@@depth 2\nText.")), chat("k"), decorators=False)
    assert [e.content for e in r.before] == ["@@depth 2\nText."]
