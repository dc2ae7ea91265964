"""Probability rolls and inclusion groups: seeded, so deterministic per chat state, random across states."""

from __future__ import annotations

import re

from _wi import book, chat, entry, fired_uids, scan, status

SEEDS = [f"chat-7:{n}" for n in range(200)]


def test_probability_is_deterministic_per_seed():
    lore = book(entry(1, ["k"], "Maybe.", probability=50, useProbability=True))
    for seed in SEEDS[:20]:
        assert status(scan(lore, chat("k"), seed=seed), 1) == status(scan(lore, chat("k"), seed=seed), 1)


def test_probability_is_random_across_seeds():
    lore = book(entry(1, ["k"], "Maybe.", probability=50, useProbability=True))
    outcomes = [status(scan(lore, chat("k"), seed=seed), 1) for seed in SEEDS]
    assert set(outcomes) == {"fired", "probability"}
    assert 0.35 < outcomes.count("fired") / len(outcomes) < 0.65
    failed = next(s for s in SEEDS if status(scan(lore, chat("k"), seed=s), 1) == "probability")
    reason = scan(lore, chat("k"), seed=failed).decision("Test.1").reason
    roll = int(re.search(r"probability roll (\d+) > 50", reason).group(1))
    assert roll >= 50


def test_probability_extremes_and_switch():
    never = book(entry(1, ["k"], "Never.", probability=0, useProbability=True))
    assert all(status(scan(never, chat("k"), seed=s), 1) == "probability" for s in SEEDS[:50])
    off = book(entry(1, ["k"], "Always.", probability=5, useProbability=False))
    assert all(status(scan(off, chat("k"), seed=s), 1) == "fired" for s in SEEDS[:50])
    # The Seraphina card's null probability reads as 100.
    null = book(entry(1, ["k"], "Always.", probability=None, useProbability=True))
    assert all(status(scan(null, chat("k"), seed=s), 1) == "fired" for s in SEEDS[:20])


def test_a_failed_roll_is_not_retried_in_recursion():
    lore = book(
        entry(1, ["apple"], "Mentions pear.", probability=0, useProbability=True, order=200),
        entry(2, [], "An apple a day.", constant=True, order=100),
    )
    r = scan(lore, chat("apple"))
    assert status(r, 1) == "probability" and r.decision("Test.1").scan_pass == 1


def _group(extra=None):
    extra = extra or {}
    return [
        entry(i, ["rain"], f"Weather {i}.", group="weather", order=100 - i, **extra.get(i, {}))
        for i in range(3)
    ]


def test_inclusion_group_fires_one_member_chosen_at_random():
    lore = book(*_group())
    winners = []
    for seed in SEEDS[:60]:
        r = scan(lore, chat("rain"), seed=seed)
        assert len(r.fired) == 1
        losers = [d for d in r.decisions if d.status == "group_lost"]
        assert len(losers) == 2 and all("weighted draw" in d.reason for d in losers)
        winners.append(r.fired[0].uid)
    assert set(winners) == {0, 1, 2}


def test_group_weight():
    lore = book(*_group({0: {"groupWeight": 1000}, 1: {"groupWeight": 1}, 2: {"groupWeight": 1}}))
    winners = [scan(lore, chat("rain"), seed=s).fired[0].uid for s in SEEDS[:50]]
    assert winners.count(0) >= 45


def test_group_override_wins_by_order():
    lore = book(*_group({1: {"groupOverride": True}, 2: {"groupOverride": True}}))
    for seed in SEEDS[:20]:
        assert fired_uids(scan(lore, chat("rain"), seed=seed)) == {1}  # order 99 beats 98


def test_group_already_active_blocks_later_members():
    lore = book(
        entry(0, ["rain"], "It will snow.", group="weather", order=100),
        entry(1, ["snow"], "Snowfall.", group="weather", order=50),
    )
    r = scan(lore, chat("rain"))
    assert status(r, 0) == "fired"
    assert status(r, 1) == "group_lost" and "already has an active entry" in r.decision("Test.1").reason


def test_group_scoring_keeps_the_best_match():
    lore = book(
        entry(0, ["rain", "storm"], "Storm.", group="weather"),
        entry(1, ["rain"], "Drizzle.", group="weather"),
    )
    for seed in SEEDS[:20]:
        assert fired_uids(scan(lore, chat("rain and storm"), seed=seed, use_group_scoring=True)) == {0}
    # Per entry: only the members that use scoring can lose on score.
    lore2 = book(
        entry(0, ["rain", "storm"], "Storm.", group="weather"),
        entry(1, ["rain"], "Drizzle.", group="weather", useGroupScoring=True),
    )
    r = scan(lore2, chat("rain and storm"))
    assert fired_uids(r) == {0} and "scored 1" in r.decision("Test.1").reason


def test_entry_in_two_groups():
    lore = book(
        entry(0, ["k"], "A.", group="x, y", groupOverride=True, order=10),
        entry(1, ["k"], "B.", group="x", order=5),
        entry(2, ["k"], "C.", group="y", order=5),
        entry(3, ["k"], "D.", group="z"),
    )
    assert fired_uids(scan(lore, chat("k"))) == {0, 3}
