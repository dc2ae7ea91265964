"""Stop strings while streaming: held back when split across pieces, never shown, nothing retracted."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rp_context.backends.stops import StopScanner


def expected(text: str, stops: list[str]) -> str:
    """Text before the stop string that completes first (earliest end, then earliest start)."""
    hits = [(text.find(s) + len(s), text.find(s)) for s in stops if s and s in text]
    return text[: min(hits)[1]] if hits else text


def run(pieces: list[str], stops: list[str]) -> tuple[list[str], StopScanner]:
    scanner = StopScanner(stops)
    out = [scanner.feed(p) for p in pieces]
    out.append(scanner.flush())
    return out, scanner


def test_stop_split_across_pieces_is_never_shown() -> None:
    out, scanner = run(["Aye, the tide", "\nUs", "er: hello"], ["\nUser:"])
    assert "".join(out) == "Aye, the tide"
    assert out[1] == ""  # "\nUs" was held back, not shown and then retracted
    assert scanner.stopped == "\nUser:"


def test_held_text_that_stops_matching_is_released() -> None:
    scanner = StopScanner(["<|im_end|>"])
    assert scanner.feed("a <|im") == "a "
    assert scanner.held == "<|im"
    assert scanner.feed("_start|>") == "<|im_start|>"
    assert scanner.flush() == ""


def test_earliest_stop_wins() -> None:
    out, scanner = run(["one END two STOP"], ["STOP", "END"])
    assert "".join(out) == "one "
    assert scanner.stopped == "END"


def test_partial_stop_at_the_end_is_released_by_flush() -> None:
    out, scanner = run(["the end\nUs"], ["\nUser:"])
    assert out == ["the end", "\nUs"]
    assert scanner.stopped is None


alphabet = st.sampled_from(list("ab\n:<|>"))


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(alphabet=alphabet, max_size=40),
    stops=st.lists(st.text(alphabet=alphabet, min_size=1, max_size=5), max_size=3),
    cuts=st.lists(st.integers(min_value=0, max_value=40), max_size=8),
)
def test_any_chunking_shows_exactly_the_text_before_the_first_stop(
    text: str, stops: list[str], cuts: list[int]
) -> None:
    bounds = sorted({min(c, len(text)) for c in cuts} | {0, len(text)})
    pieces = [text[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    out, _ = run(pieces, stops)
    want = expected(text, stops)
    assert "".join(out) == want
    shown = ""
    for piece in out:  # every shown prefix is a prefix of the final text: nothing is retracted
        shown += piece
        assert want.startswith(shown)
