"""Recursion: fired content is scanned again; prevent/exclude/delay-until-recursion; steps; min activations."""

from __future__ import annotations

from _wi import book, chat, entry, scan, status


def _chain(fields=None):
    fields = fields or {}
    return book(
        entry(0, ["apple"], "The apple fell near a banana.", order=200, **fields.get(0, {})),
        entry(1, ["banana"], "Bananas grow near the cherry tree.", order=100, **fields.get(1, {})),
        entry(2, ["cherry"], "Cherries.", order=50, **fields.get(2, {})),
    )


def test_recursion_chain():
    r = scan(_chain(), chat("an apple"))
    assert [d.status for d in r.decisions] == ["fired"] * 3
    assert [d.scan_pass for d in r.decisions] == [1, 2, 3]
    assert r.passes == 4
    assert [e.uid for e in r.before] == [2, 1, 0]


def test_recursion_off():
    r = scan(_chain(), chat("an apple"), recursive=False)
    assert [d.status for d in r.decisions] == ["fired", "no_match", "no_match"]


def test_prevent_recursion():
    r = scan(_chain({0: {"preventRecursion": True}}), chat("an apple"))
    assert [d.status for d in r.decisions] == ["fired", "no_match", "no_match"]


def test_exclude_recursion():
    lore = _chain({1: {"excludeRecursion": True}})
    r = scan(lore, chat("an apple"))
    assert [d.status for d in r.decisions] == ["fired", "no_match", "no_match"]
    # It still fires from the chat itself.
    assert status(scan(lore, chat("a banana")), 1) == "fired"


def test_max_recursion_steps():
    r = scan(_chain(), chat("an apple"), max_recursion_steps=2)
    assert [d.status for d in r.decisions] == ["fired", "fired", "no_match"]
    assert r.passes == 2


def test_delay_until_recursion():
    lore = book(
        entry(0, ["apple"], "An orchard.", order=200),
        entry(1, ["apple"], "Delayed apple lore.", order=100, delayUntilRecursion=True),
    )
    r = scan(lore, chat("apple"))
    assert (status(r, 0), status(r, 1)) == ("fired", "fired")
    assert r.decision("Test.1").scan_pass == 2
    # Nothing recursed: the delayed entry never gets its pass.
    alone = book(entry(1, ["apple"], "Delayed apple lore.", delayUntilRecursion=True))
    r2 = scan(alone, chat("apple"))
    assert status(r2, 1) == "delayed"


def test_delay_until_recursion_levels():
    lore = book(
        entry(1, ["apple"], "Level one.", delayUntilRecursion=1, order=100),
        entry(2, ["apple"], "Level two.", delayUntilRecursion=2, order=50),
    )
    # No normal pass fires anything; level 1 is skipped over, and level 2 is opened as the next one.
    r = scan(lore, chat("apple"))
    assert (status(r, 1), status(r, 2)) == ("fired", "fired")
    assert [d.scan_pass for d in r.decisions] == [2, 2]


def test_min_activations_widens_the_scan():
    lore = book(entry(0, ["apple"], "Apples."))
    messages = chat("an apple", "one", "two")
    assert status(scan(lore, messages), 0) == "no_match"
    r = scan(lore, messages, min_activations=1)
    assert status(r, 0) == "fired" and "message #0" in r.decision("Test.0").reason
    # The widening stops at the depth maximum (SillyTavern checks it before widening: +1).
    assert status(scan(lore, chat("an apple", "one", "two", "three"), min_activations=1, min_activations_depth_max=3), 0) == "fired"
    assert status(scan(lore, chat("an apple", "one", "two", "three"), min_activations=1, min_activations_depth_max=2), 0) == "no_match"
