"""Key matching: selective logic, regex keys, whole words, case, scan depth, injections, macros."""

from __future__ import annotations

import re

import pytest
from _wi import book, chat, entry, fired_uids, scan, status
from hypothesis import given, settings
from hypothesis import strategies as st

from rp_context.macros import MacroContext
from rp_context.worldinfo import parse_regex_key
from rp_context.worldinfo.matching import KeyMatcher

# (logic, text, fires) from the table in sillytavern.md §8.4: AND_ANY 0, NOT_ALL 1, NOT_ANY 2, AND_ALL 3.
LOGIC_CASES = [
    (0, "a sword of fire", True),
    (1, "a sword of fire", True),
    (2, "a sword of fire", False),
    (3, "a sword of fire", False),
    (0, "a sword of fire and ice", True),
    (1, "a sword of fire and ice", False),
    (2, "a sword of fire and ice", False),
    (3, "a sword of fire and ice", True),
    (0, "a plain sword", False),
    (1, "a plain sword", True),
    (2, "a plain sword", True),
    (3, "a plain sword", False),
]


@pytest.mark.parametrize(("logic", "text", "fires"), LOGIC_CASES)
def test_selective_logic(logic, text, fires):
    lore = book(entry(1, ["sword"], "Swords.", keysecondary=["fire", "ice"], selectiveLogic=logic))
    result = scan(lore, chat(text))
    assert status(result, 1) == ("fired" if fires else "secondary_failed")
    decision = result.decision("Test.1")
    assert decision.matched_key == "sword"
    assert ["AND_ANY", "NOT_ALL", "NOT_ANY", "AND_ALL"][logic] in decision.reason


def test_secondary_keys_need_selective():
    lore = book(entry(1, ["sword"], "Swords.", keysecondary=["ice"], selective=False, selectiveLogic=3))
    assert status(scan(lore, chat("a plain sword")), 1) == "fired"


def test_secondary_alone_does_not_activate():
    lore = book(entry(1, ["sword"], "Swords.", keysecondary=["ice"]))
    assert status(scan(lore, chat("only ice here")), 1) == "no_match"


def test_regex_keys():
    lore = book(
        entry(1, ["/drag(on|ons)\\b/i"], "Dragons."),
        entry(2, ["/Wyvern/"], "Wyverns."),
        entry(3, ["/^User: hello/"], "Greeting."),
    )
    assert fired_uids(scan(lore, chat("Here be DRAGONS"))) == {1}
    # A regex key is tested as written: no lower-casing, so /Wyvern/ needs the capital.
    assert fired_uids(scan(lore, chat("a wyvern"))) == set()
    assert fired_uids(scan(lore, chat("a Wyvern"))) == {2}
    # The buffer starts each message with \x01, so ^ does not anchor to a message.
    assert fired_uids(scan(lore, chat("hello"))) == set()


def test_parse_regex_key():
    assert parse_regex_key("/a+b/gi").flags & 2  # re.IGNORECASE
    assert parse_regex_key("plain") is None
    assert parse_regex_key("/a/b/") is None  # an unescaped slash inside: not a regex
    assert parse_regex_key("/(unclosed/") is None  # does not compile: a plain key
    assert parse_regex_key("/a\\/b/").search("a/b")
    assert parse_regex_key("/(?<word>cat)/").search("cat").group("word") == "cat"


def test_v3_use_regex_keys():
    lore = book(entry(1, ["colou?r"], "Colours."))
    lore.entries[0].use_regex = True
    assert fired_uids(scan(lore, chat("What COLOR is it?"))) == {1}
    lore.entries[0].use_regex = False
    assert fired_uids(scan(lore, chat("What COLOR is it?"))) == set()


@pytest.mark.parametrize(
    ("text", "whole", "fires"),
    [
        ("the cat sat", True, True),
        ("concatenate", True, False),
        ("concatenate", False, True),
        ("cat's toy", True, True),
        ("my_cat", True, False),  # underscore is a word character
        ("cat\nnext line", True, True),
    ],
)
def test_whole_words(text, whole, fires):
    lore = book(entry(1, ["cat"], "Cats."))
    assert (status(scan(lore, chat(text), match_whole_words=whole), 1) == "fired") is fires


def test_per_entry_overrides_beat_settings():
    lore = book(
        entry(1, ["Cat"], "Case.", caseSensitive=True),
        entry(2, ["cat"], "Substring.", matchWholeWords=False),
        entry(3, ["cat"], "Deep.", scanDepth=3),
    )
    messages = chat("a cat", "nothing", "concatenate")
    result = scan(lore, messages)
    assert status(result, 1) == "no_match"  # 'Cat' case-sensitive vs 'cat'
    assert status(result, 2) == "fired"  # 'concatenate' in the newest message
    assert status(result, 3) == "fired"  # reaches the oldest message
    assert fired_uids(scan(lore, chat("a CAT"))) == {2, 3}
    assert fired_uids(scan(lore, chat("a CAT"), case_sensitive=True)) == set()


def test_scan_depth_and_injections():
    lore = book(entry(1, ["lantern"], "Lanterns."))
    messages = chat("a lantern", "one", "two")
    assert status(scan(lore, messages), 1) == "no_match"
    assert "scan depth 2" in scan(lore, messages).decision("Test.1").reason
    assert status(scan(lore, messages, scan_depth=3), 1) == "fired"
    injected = scan(lore, messages, extra=("Author's note: carry a lantern",))
    assert status(injected, 1) == "fired"
    assert "injected prompt" in injected.decision("Test.1").reason
    # Depth 0 scans nothing, not even injections.
    assert status(scan(lore, messages, scan_depth=0, extra=("lantern",)), 1) == "no_match"


def test_constant_and_disabled():
    lore = book(
        entry(1, [], "Always.", constant=True),
        entry(2, ["cat"], "Off.", disable=True),
        entry(3, [], "No keys."),
    )
    result = scan(lore, chat("cat"))
    assert status(result, 1) == "fired" and result.decision("Test.1").reason == "constant"
    assert status(result, 2) == "disabled"
    assert status(result, 3) == "no_match" and result.decision("Test.3").reason == "no keys"


def test_empty_content_fires_but_is_not_inserted():
    lore = book(entry(1, ["cat"], ""))
    result = scan(lore, chat("cat"))
    assert status(result, 1) == "empty"
    assert result.fired == []


def test_macros_in_keys_and_content():
    lore = book(entry(1, ["{{char}}"], "{{char}} knows {{user}}."))
    ctx = MacroContext(user="Alex", char="Seraphina")
    result = scan(lore, chat("Hello Seraphina"), macro_ctx=ctx)
    assert [e.content for e in result.fired] == ["Seraphina knows Alex."]
    assert result.decision("Test.1").matched_key == "Seraphina"
    # Without a macro context the key stays literal.
    assert fired_uids(scan(lore, chat("Hello Seraphina"))) == set()


def test_books_keep_their_identity():
    a = book(entry(1, ["cat"], "From A."), name="A")
    b = book(entry(1, ["cat"], "From B."), name="B")
    result = scan([a, b], chat("cat"))
    assert {(e.book, e.uid) for e in result.fired} == {("A", 1), ("B", 1)}
    assert [d.key for d in result.decisions] == ["A.1", "B.1"]


@settings(max_examples=200, deadline=None)
@given(
    haystack=st.text(alphabet="ab_ .\n\x01é", max_size=20),
    key=st.text(alphabet="ab_.é", min_size=1, max_size=3),
)
def test_whole_word_matches_the_javascript_regex(haystack, key):
    """SillyTavern's definition: (?:^|\\W)(key)(?:$|\\W) with JavaScript's ASCII \\W."""
    js = re.compile(f"(?:^|[^A-Za-z0-9_])({re.escape(key)})(?:\\Z|[^A-Za-z0-9_])")
    matcher = KeyMatcher(case_sensitive=True, whole_words=True)
    assert matcher.matches(haystack, key) == bool(js.search(haystack))
