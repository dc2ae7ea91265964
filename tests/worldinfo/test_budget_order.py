"""Positions, order inside each bucket, and the token budget (sillytavern.md §4.5, §8.4 steps 6, 8, 9)."""

from __future__ import annotations

from _wi import book, chat, counter, entry, scan, status

from rp_context.worldinfo import WorldInfoSettings


def _cost(text: str) -> int:
    return counter().count(text + "\n")


def test_positions_go_to_their_buckets():
    lore = book(
        entry(0, ["k"], "before", position=0),
        entry(1, ["k"], "after", position=1),
        entry(2, ["k"], "an top", position=2),
        entry(3, ["k"], "an bottom", position=3),
        entry(4, ["k"], "depth", position=4, depth=2, role=1),
        entry(5, ["k"], "em top", position=5),
        entry(6, ["k"], "em bottom", position=6),
    )
    r = scan(lore, chat("k"))
    assert [e.content for e in r.before] == ["before"]
    assert [e.content for e in r.after] == ["after"]
    assert [e.content for e in r.an_top] == ["an top"]
    assert [e.content for e in r.an_bottom] == ["an bottom"]
    assert [e.content for e in r.examples_top] == ["em top"]
    assert [e.content for e in r.examples_bottom] == ["em bottom"]
    (depth,) = r.at_depth
    assert (depth.content, depth.depth, depth.role, depth.position) == ("depth", 2, "user", "at_depth")
    assert r.wrap_authors_note("NOTE") == "an top\nNOTE\nan bottom"


def test_card_style_positions_and_unknown_positions():
    lore = book(entry(0, ["k"], "A"), entry(1, ["k"], "B"), entry(2, ["k"], "C", position=7))
    lore.entries[0].extensions.pop("position")
    lore.entries[0].position = "after_char"
    r = scan(lore, chat("k"))
    assert [e.content for e in r.after] == ["A"]
    assert [e.content for e in r.before] == ["B"]
    assert status(r, 2) == "disabled" and "not supported" in r.decision("Test.2").reason


def test_ascending_order_within_buckets():
    lore = book(
        entry(0, ["k"], "mid", order=50),
        entry(1, ["k"], "high", order=300),
        entry(2, ["k"], "low", order=1),
        entry(3, ["k"], "after-high", order=90, position=1),
        entry(4, ["k"], "after-low", order=10, position=1),
    )
    r = scan(lore, chat("k"))
    assert [e.content for e in r.before] == ["low", "mid", "high"]
    assert [e.content for e in r.after] == ["after-low", "after-high"]
    assert r.before_text() == "low\nmid\nhigh"
    # Scan order (and so budget priority) is order descending.
    assert [d.uid for d in r.decisions] == [1, 3, 0, 4, 2]


def test_depth_injections_merge_per_depth_and_role():
    lore = book(
        entry(0, ["k"], "sys a", position=4, depth=1, role=0, order=10),
        entry(1, ["k"], "sys b", position=4, depth=1, role=0, order=20),
        entry(2, ["k"], "user", position=4, depth=1, role=1),
        entry(3, ["k"], "deep", position=4, depth=5, role=2),
    )
    injections = {(i.depth, i.role): i.text for i in scan(lore, chat("k")).depth_injections()}
    assert injections == {(1, "system"): "sys a\nsys b", (1, "user"): "user", (5, "assistant"): "deep"}


def test_budget_overflow_keeps_higher_order():
    texts = {0: "first entry " * 10, 1: "second entry " * 10, 2: "third entry " * 10}
    lore = book(
        entry(0, ["k"], texts[0], order=300),
        entry(1, ["k"], texts[1], order=200),
        entry(2, ["k"], texts[2], order=100),
    )
    cap = _cost(texts[0]) + _cost(texts[1]) + 1
    r = scan(lore, chat("k"), budget_cap=cap)
    assert [e.uid for e in r.before] == [1, 0]
    assert status(r, 2) == "budget"
    assert r.decision("Test.2").reason.endswith(f"budget: {cap - 1 + _cost(texts[2])}/{cap} tokens")
    assert r.used_tokens == cap - 1 < r.budget_tokens
    # The check is "reaching" the budget, not exceeding it: exactly full does not fit.
    exact = scan(lore, chat("k"), budget_cap=cap - 1)
    assert [e.uid for e in exact.before] == [0]


def test_constant_entries_obey_the_budget_unless_outside():
    text = "constant lore " * 20
    lore = book(*(entry(i, [], text, constant=True, order=100 - i) for i in range(3)))
    cap = 2 * _cost(text) + 1
    inside = scan(lore, chat("hi"), budget_cap=cap)
    assert [status(inside, i) for i in range(3)] == ["fired", "fired", "budget"]
    outside = scan(lore, chat("hi"), budget_cap=cap, constant_outside_budget=True)
    assert [status(outside, i) for i in range(3)] == ["fired"] * 3
    assert outside.used_tokens == 0
    assert outside.outside_budget_tokens == 3 * _cost(text)
    assert all(e.outside_budget for e in outside.fired)


def test_ignore_budget_entry_fires_after_overflow():
    big = "big " * 50
    lore = book(
        entry(0, ["k"], big, order=300),
        entry(1, ["k"], big, order=200),
        entry(2, ["k"], "small", order=100, ignoreBudget=True),
    )
    r = scan(lore, chat("k"), budget_cap=_cost(big) + 1)
    assert [status(r, i) for i in range(3)] == ["fired", "budget", "fired"]
    assert r.overflowed


def test_budget_from_context_size():
    s = WorldInfoSettings()
    assert s.budget_tokens(8192) == 2048
    assert s.budget_tokens(2) == 1  # round(0.5) = 1 (JavaScript rounds half up)
    assert WorldInfoSettings(budget_percent=0).budget_tokens(8192) == 1  # never 0
    assert WorldInfoSettings(budget_cap=300).budget_tokens(8192) == 300
    assert WorldInfoSettings(budget_percent=10, budget_cap=3000).budget_tokens(8192) == 819


def test_settings_from_sillytavern_and_typos():
    import pydantic
    import pytest

    s = WorldInfoSettings.from_sillytavern(
        {"world_info_depth": 5, "world_info_budget": 40, "world_info_recursive": False, "world_info": {}}
    )
    assert (s.scan_depth, s.budget_percent, s.recursive) == (5, 40, False)
    with pytest.raises(pydantic.ValidationError):
        WorldInfoSettings(scan_dept=3)  # type: ignore[call-arg]
