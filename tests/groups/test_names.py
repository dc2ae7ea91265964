"""Keeping a reply to its speaker (stop strings, trimming) and rendering a group chat with the
real ChatML template and SmolLM2's tokenizer (names on other members' turns, a stable prefix)."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from rp_context.group import group_card_fields, member_stop_strings, others, trim_reply
from rp_context.presets import get_family
from rp_context.templates import Message, render_instruct

from .conftest import Cast

QUAY = ["Ann", "Anna", "Annabel Lee"]


def test_stop_strings_name_everyone_but_the_speaker() -> None:
    assert member_stop_strings("Anna", QUAY, "Sam") == ["\nAnn:", "\nAnnabel Lee:", "\nSam:"]
    assert member_stop_strings("Ann", QUAY, "Sam") == ["\nAnna:", "\nAnnabel Lee:", "\nSam:"]
    assert member_stop_strings("Sam", QUAY, "Sam") == ["\nAnn:", "\nAnna:", "\nAnnabel Lee:"]  # impersonation
    assert member_stop_strings("Ann", ["Ann", "Ann", "Anna"], None) == ["\nAnna:"]


def test_trim_cuts_at_another_speakers_line() -> None:
    reply = "She nods.\nAnna: And me?\nAnn: Yes."
    assert trim_reply(reply, "Ann", QUAY, "Sam") == "She nods."
    assert trim_reply("Anna: hi", "Ann", QUAY, "Sam") == ""
    assert trim_reply("Ann: Fine.\nSam: ok", "Ann", QUAY, "Sam") == "Fine."
    assert trim_reply("Ann:   Fine.  \n\nSam: ok", "Ann", QUAY, "Sam") == "Fine."
    assert trim_reply(" \nAnn: Fine.", "Ann", QUAY, "Sam") == "Fine."  # a model's leading space
    assert trim_reply(" Fine.", "Ann", QUAY, "Sam") == " Fine."  # otherwise left alone


def test_members_may_be_group_members(prefixes: Cast) -> None:
    from rp_context.group import group_members

    members = group_members(prefixes.roster, prefixes.cards)
    assert member_stop_strings("Ann", members, "Sam") == member_stop_strings("Ann", QUAY, "Sam")
    assert trim_reply("Hi.\nAnna: no", "Ann", members, "Sam") == "Hi."


def test_trim_keeps_names_that_only_start_with_another_name() -> None:
    # Anna speaks; "Ann" is another member, but "Anna:" and "Annabel" lines are not Ann's
    text = "Anna: Well.\nAnnabel sings.\nAnnabel Leeward: no such member\nAnnie: nobody"
    assert trim_reply(text, "Anna", QUAY, "Sam") == text.removeprefix("Anna: ")
    assert trim_reply("Well.\nAnn: stop", "Anna", QUAY, "Sam") == "Well."
    # Ann speaks and writes a line as Anna: cut there, not at her own name
    assert trim_reply("Ann: Hm.\nAnn: more\nAnna: mine", "Ann", QUAY, None) == "Hm.\nAnn: more"
    # names in the middle of a line are speech, not a new turn
    assert trim_reply("I told Anna: no.", "Ann", QUAY, "Sam") == "I told Anna: no."
    assert trim_reply("No names here.", "Ann", [], None) == "No names here."


@settings(max_examples=80, deadline=None)
@given(
    speaker=st.sampled_from(QUAY),
    lines=st.lists(
        st.tuples(st.sampled_from([*QUAY, "Sam", "Annie", ""]), st.text(alphabet="ab :\n", max_size=8)),
        max_size=6,
    ),
)
def test_trimmed_reply_never_holds_another_speakers_line(speaker: str, lines) -> None:
    text = "\n".join(f"{who}: {said}" if who else said for who, said in lines)
    out = trim_reply(text, speaker, QUAY, "Sam")
    lead = re.match(r"\s*" + re.escape(speaker) + r":[ \t]*", text)
    stripped = text[lead.end() :] if lead else text
    assert stripped.startswith(out)
    for name in others(speaker, QUAY, "Sam"):
        assert not out.startswith(f"{name}:") and f"\n{name}:" not in out
    # nothing is cut when no other speaker starts a line
    if not any(stripped.startswith(f"{n}:") or f"\n{n}:" in stripped for n in others(speaker, QUAY, "Sam")):
        assert out == stripped


def _prompt(cast: Cast, speaker: str, mode: str, history: list[Message]):
    f = group_card_fields(cast.roster, cast.cards, speaker, mode=mode)
    story = "\n".join(x for x in (f.description, f.personality, f.scenario) if x)
    return render_instruct(
        get_family("chatml"),
        [Message("system", story), *history],
        group=True,
        user="Sam",
        speaker=speaker,
        stop_names=others(speaker, cast.names, "Sam"),
    )


def _history(cast: Cast) -> list[Message]:
    wren, tobias, absalom = cast.names
    return [
        Message("user", "Is anyone awake?", "Sam"),
        Message("assistant", "Always.", wren),
        Message("assistant", "Aye, and hungry.", tobias),
        Message("assistant", "Regulation nine forbids eating in the lamp room.", absalom),
        Message("user", "What now?", "Sam"),
    ]


def test_group_render_names_members_and_stops_at_them(skerry: Cast) -> None:
    wren, tobias, absalom = skerry.names
    rendered = _prompt(skerry, tobias, "join", _history(skerry))
    text = rendered.text
    for name, said in ((wren, "Always."), (tobias, "Aye, and hungry.")):
        assert f"<|im_start|>assistant\n{name}: {said}<|im_end|>" in text
    assert text.endswith(f"<|im_start|>assistant\n{tobias}:")
    for stop in member_stop_strings(tobias, skerry.names, "Sam"):
        assert stop in rendered.stop
    assert f"\n{tobias}:" not in rendered.stop


def test_join_keeps_the_token_prefix_across_speakers(skerry: Cast, smollm_tokenizer) -> None:
    """With SmolLM2's own tokenizer: in join mode the prompts for the three speakers share every
    token up to the generation header; in swap mode they part ways inside the system prompt."""
    history = _history(skerry)
    shared: dict[str, int] = {}
    for mode in ("join", "swap"):
        ids = [_prompt(skerry, s, mode, history).token_ids(smollm_tokenizer) for s in skerry.names]
        common = 0
        while all(len(x) > common for x in ids) and len({x[common] for x in ids}) == 1:
            common += 1
        shared[mode] = common
        if mode == "join":
            header = smollm_tokenizer.tokenize("<|im_start|>assistant\n", special=True)
            body = _prompt(skerry, skerry.names[0], mode, history)
            head_len = len(body.token_ids(smollm_tokenizer)) - len(header) - len(
                smollm_tokenizer.tokenize(f"{skerry.names[0]}:")
            )
            assert common >= head_len - 1, (common, head_len)
    assert shared["join"] > 3 * shared["swap"]
    print(f"\nshared prefix tokens across three speakers: join {shared['join']}, swap {shared['swap']}")
