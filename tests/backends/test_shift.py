"""Planning a context shift: find the evicted middle span so the tail after it can be kept."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rp_context.backends.shift import plan_shift
from rp_context.tokens import common_prefix


def test_common_prefix() -> None:
    assert common_prefix([1, 2, 3], [1, 2, 4]) == 2
    assert common_prefix([1, 2], [1, 2, 3]) == 2
    assert common_prefix([], [1]) == 0


def test_middle_span_removed_is_found() -> None:
    pinned = list(range(100, 140))
    middle = list(range(200, 260))
    tail = list(range(300, 380))
    cached = pinned + middle + tail + [7, 8]
    prompt = pinned + tail + [9, 9, 9]
    plan = plan_shift(cached, prompt, min_kept=16)
    assert plan is not None
    assert (plan.start, plan.removed, plan.kept) == (len(pinned), len(middle), len(tail))


def test_no_plan_when_the_saving_is_too_small() -> None:
    cached = [1, 2, 3, 4, 5, 6, 7, 8]
    prompt = [1, 2, 6, 7, 0]
    assert plan_shift(cached, prompt, min_kept=16) is None
    assert plan_shift(cached, prompt, min_kept=2) is not None


def test_no_plan_when_the_prompt_extends_the_cache() -> None:
    assert plan_shift([1, 2, 3], [1, 2, 3, 4, 5], min_kept=1) is None


tokens = st.lists(st.integers(min_value=0, max_value=5), max_size=30)


@settings(max_examples=200, deadline=None)
@given(p=tokens, m=st.lists(st.integers(0, 5), min_size=1, max_size=20), s=tokens, n=tokens)
def test_any_plan_is_valid_and_at_least_as_good_as_the_true_cut(
    p: list[int], m: list[int], s: list[int], n: list[int]
) -> None:
    cached = p + m + s
    prompt = p + s + n
    plan = plan_shift(cached, prompt, min_kept=1)
    if plan is None:
        # Only when cutting cannot beat the plain prefix by a token.
        start = common_prefix(cached, prompt)
        assert start >= len(cached) - 1 or start >= len(prompt) or all(
            common_prefix(cached[start + d :], prompt[start:]) == 0
            for d in range(1, len(cached) - start)
        )
        return
    a, d, k = plan.start, plan.removed, plan.kept
    assert cached[:a] == prompt[:a]
    assert cached[a + d : a + d + k] == prompt[a : a + k]
    true_start = common_prefix(cached, prompt)
    assert a == true_start
    if s and true_start == len(p):
        assert k >= len(s)  # the true cut is a candidate, so the best keeps at least all of S
