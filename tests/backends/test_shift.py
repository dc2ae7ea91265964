"""Planning a context shift: find the evicted middle span so the tail after it can be kept."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rp_context.backends.shift import Chunk, plan_reuse, plan_shift
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


# -- plan_reuse: runs moved to their new places, new text between them evaluated in place --

T, M, S = list(range(100, 140)), list(range(200, 260)), list(range(300, 380))
M2, TAIL = list(range(500, 530)), [9, 9, 9]


def test_a_changed_memory_keeps_the_history_after_it() -> None:
    plan = plan_reuse(T + M + S + [7, 8], T + M2 + S + TAIL, min_chunk=16)
    assert plan.prefix == len(T)
    assert plan.chunks == (Chunk(src=len(T + M), dst=len(T + M2), length=len(S)),)
    assert plan.gaps == [(len(T), len(T + M2))]
    assert plan.reused == len(T + S) and plan.evaluated(len(T + M2 + S + TAIL)) == len(M2 + TAIL)
    assert plan.cut == len(M)


def test_without_insertion_only_cut_spans_are_planned() -> None:
    assert plan_reuse(T + M + S, T + M2 + S + TAIL, insert=False).chunks == ()
    plan = plan_reuse(T + M + S + [7], T + S + TAIL, insert=False)
    assert plan.chunks == (Chunk(src=len(T + M), dst=len(T), length=len(S)),) and plan.gaps == []


def test_a_moved_injection_is_evaluated_again_and_the_text_around_it_kept() -> None:
    inj, x, y = list(range(600, 620)), list(range(700, 760)), list(range(800, 850))
    plan = plan_reuse(T + inj + x + y, T + x + inj + y + [1])
    assert [(c.src, c.dst, c.length) for c in plan.chunks] == [
        (len(T + inj), len(T), len(x)), (len(T + inj + x), len(T + x + inj), len(y))]
    assert plan.gaps == [(len(T + x), len(T + x + inj))]


def test_the_last_prompt_token_is_never_reused() -> None:
    assert plan_reuse(T + S, T + S).reused == len(T + S) - 1
    plan = plan_reuse(T + M + S, T + S)
    assert plan.reused == len(T + S) - 1 and plan.chunks[-1].length == len(S) - 1


def test_runs_that_would_cross_keep_the_heavier() -> None:
    a, b = list(range(600, 700)), list(range(700, 720))
    plan = plan_reuse(T + a + b, T + b + a + TAIL)
    assert [(c.src, c.length) for c in plan.chunks] == [(len(T), len(a))]


@settings(max_examples=200, deadline=None)
@given(c=st.lists(st.integers(0, 3), max_size=60), p=st.lists(st.integers(0, 3), min_size=1, max_size=60),
       k=st.integers(2, 6), insert=st.booleans())
def test_any_reuse_plan_is_valid(c: list[int], p: list[int], k: int, insert: bool) -> None:
    plan = plan_reuse(c, p, min_chunk=k, insert=insert)
    assert c[: plan.prefix] == p[: plan.prefix] and plan.prefix <= len(p) - 1
    at_c = at_p = plan.prefix
    for ch in plan.chunks:
        assert ch.length >= k and ch.src >= at_c and ch.dst >= at_p
        assert c[ch.src : ch.src + ch.length] == p[ch.dst : ch.dst + ch.length]
        at_c, at_p = ch.src + ch.length, ch.dst + ch.length
    assert plan.end <= len(p) - 1 and plan.reused + plan.evaluated(len(p)) == len(p)
    if not insert:
        assert plan.gaps == []


@settings(max_examples=100, deadline=None)
@given(n=st.integers(1, 40), d=st.integers(0, 40), m=st.integers(0, 40), s=st.integers(0, 80))
def test_the_true_edit_is_found(n: int, d: int, m: int, s: int) -> None:
    """Distinct tokens: prefix, a replaced span, then the kept text; it is all reused."""
    head, old, new, kept = (list(range(b, b + x)) for b, x in ((0, n), (1000, d), (2000, m), (3000, s)))
    plan = plan_reuse(head + old + kept, head + new + kept + [9], min_chunk=16)
    moved = bool(d or m)  # the kept text moved, so it is reused only as a run of >= 16 tokens
    assert plan.reused == (n + s if s >= 16 or not moved else n)
