"""Property: for any books and chat, decisions are deterministic and fired entries fit the budget."""

from __future__ import annotations

from _wi import Msg, book, entry, scan
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

WORDS = ["apple", "pear", "plum", "fig", "kiwi", "the", "a", "Apple", "PLUM"]

text = st.lists(st.sampled_from(WORDS), min_size=0, max_size=25).map(" ".join)
entries = st.lists(
    st.fixed_dictionaries(
        {
            "keys": st.lists(st.sampled_from(WORDS[:5] + ["/p(ear|lum)/i"]), max_size=2),
            "content": text,
            "constant": st.booleans(),
            "order": st.integers(0, 5),
            "position": st.integers(0, 6),
            "probability": st.sampled_from([100, 50, 0]),
            "group": st.sampled_from(["", "g1", "g2", "g1,g2"]),
            "preventRecursion": st.booleans(),
            "keysecondary": st.lists(st.sampled_from(WORDS[:5]), max_size=2),
            "selectiveLogic": st.integers(0, 3),
            "groupOverride": st.booleans(),
        }
    ),
    max_size=8,
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    raw=entries,
    messages=st.lists(text, max_size=4),
    cap=st.integers(1, 120),
    outside=st.booleans(),
    seed=st.text(max_size=8),
)
def test_deterministic_and_within_budget(raw, messages, cap, outside, seed):
    lore = book(*(entry(i, e.pop("keys"), e.pop("content"), **e) for i, e in enumerate(raw)))
    chat = [Msg("User", t) for t in messages]
    kwargs = dict(seed=seed, budget_cap=cap, constant_outside_budget=outside, ctx=100_000)
    first = scan(lore, chat, **kwargs)
    second = scan(lore, chat, **kwargs)
    assert first.model_dump() == second.model_dump()

    assert first.used_tokens < first.budget_tokens == cap
    inside = [e for e in first.fired if not e.outside_budget]
    assert sum(e.tokens for e in inside) == first.used_tokens
    assert len(first.decisions) == len(raw)
    fired_keys = {d.key for d in first.decisions if d.status in ("fired", "empty")}
    assert {e.key for e in first.fired} <= fired_keys
    assert {d.key for d in first.decisions if d.status == "fired"} == {e.key for e in first.fired}
    # At most one fired entry per inclusion group.
    groups = [g for e in first.fired for g in raw[int(e.uid)]["group"].split(",") if g] if raw else []
    assert len(groups) == len(set(groups))
    # Each bucket is in ascending order.
    for bucket in (first.before, first.after, first.an_top, first.an_bottom, first.at_depth):
        assert [e.order for e in bucket] == sorted(e.order for e in bucket)
