"""The banned-phrase filter on its own: what it holds, releases and backs up to (no model)."""

from __future__ import annotations

from rp_context.backends.phrasebans import PhraseGuard, fold


def _feed(guard: PhraseGuard, pieces: list[str]) -> tuple[str, list[int | None]]:
    shown, rewinds = [], []
    for i, p in enumerate(pieces):
        text, rewind = guard.push(i, p.encode())
        shown.append(text)
        rewinds.append(rewind)
    return "".join(shown), rewinds


def test_no_phrases_passes_text_through() -> None:
    g = PhraseGuard([])
    shown, rewinds = _feed(g, ["Hel", "lo", " there"])
    assert shown == "Hello there" and rewinds == [None, None, None]


def test_possible_start_is_held_a_whole_token_at_a_time() -> None:
    g = PhraseGuard(["shivers down"])
    text, _ = g.push(0, b"A sh")  # " sh" could begin the phrase: the whole token is held
    assert text == "" and g.held == "A sh"
    text, _ = g.push(1, b"ore")  # "shore" cannot: released
    assert text == "A shore" and g.held == ""


def test_completed_phrase_backs_up_to_the_token_where_it_began() -> None:
    g = PhraseGuard(["Shivers down"])
    shown, rewinds = _feed(g, ["It sent", " shiv", "ers", " down"])
    assert rewinds == [None, None, None, 1]
    assert shown == "It sent"
    assert g.tokens == [0] and g.held == ""
    # the token drawn at position 1 is now excluded there
    assert g._excluded == {1: {1}}


def test_case_is_ignored_and_offsets_survive_folding() -> None:
    assert len(fold("İstanbul")) == len("İstanbul")
    g = PhraseGuard(["barely above a whisper"])
    _, rewinds = _feed(g, ["Her voice,", " BARELY", " above a", " Whisper"])
    assert rewinds[-1] == 1


def test_split_utf8_character_rewinds_to_its_first_byte() -> None:
    g = PhraseGuard(["é!"])
    t0, _ = g.push(0, b"ok ")
    t1, _ = g.push(1, "é".encode()[:1])  # half a character: no text yet
    t2, _ = g.push(2, "é".encode()[1:])
    t3, rewind = g.push(3, b"!")
    assert t0 == "ok " and t1 == t2 == t3 == ""
    assert rewind == 1  # back to the token holding the first byte


def test_flush_releases_what_never_became_a_phrase() -> None:
    g = PhraseGuard(["the end of"])
    shown, _ = _feed(g, ["So this is", " the end"])
    assert shown == "So this is"
    assert g.flush() == " the end"
