"""Sticky, cooldown and delay, stored like SillyTavern's chat_metadata.timedWorldInfo."""

from __future__ import annotations

from _wi import book, chat, entry, scan, status


def _lore():
    return book(entry(1, ["apple"], "Apple lore.", sticky=2, cooldown=2))


def test_sticky_then_cooldown():
    lore = _lore()
    first = scan(lore, chat("x", "x", "apple"))  # chat length 3
    assert status(first, 1) == "fired"
    state = first.timed_effects
    assert state["sticky"]["Test.1"]["start"] == 3 and state["sticky"]["Test.1"]["end"] == 5
    assert state["cooldown"]["Test.1"]["end"] == 5
    # Length 4, no apple: still sticky.
    second = scan(lore, chat("x", "x", "apple", "pear"), timed=state)
    assert status(second, 1) == "fired" and second.decision("Test.1").reason.startswith("sticky")
    # Length 5: sticky over, cooldown starts; the key alone cannot bring it back.
    third = scan(lore, chat("x", "x", "apple", "pear", "apple"), timed=second.timed_effects)
    assert status(third, 1) == "cooldown"
    assert third.timed_effects["cooldown"]["Test.1"]["protected"] is True
    # Length 7: cooldown over, fires on its key again.
    fourth = scan(lore, chat("x", "x", "apple", "pear", "apple", "x", "apple"), timed=third.timed_effects)
    assert status(fourth, 1) == "fired"


def test_state_is_not_mutated_and_swipes_reset():
    lore = _lore()
    state = scan(lore, chat("x", "x", "apple")).timed_effects
    snapshot = {k: {kk: dict(vv) for kk, vv in v.items()} for k, v in state.items()}
    # Same length again (a regenerate): the unprotected effects are dropped, nothing is sticky.
    again = scan(lore, chat("x", "x", "pear"), timed=state)
    assert status(again, 1) == "no_match"
    assert state == snapshot


def test_delay():
    lore = book(entry(1, ["apple"], "Late lore.", delay=3))
    assert status(scan(lore, chat("x", "apple")), 1) == "delayed"
    assert status(scan(lore, chat("x", "x", "apple")), 1) == "fired"
