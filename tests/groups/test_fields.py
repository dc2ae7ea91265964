"""Which cards a group prompt holds: swap (the speaker's), join (every unmuted member's, with the
roster's prefix/suffix), join_with_muted (everyone's), traced piece by piece to members."""

from __future__ import annotations

import re

import pytest
import yaml

from rp_context.cards.roster import load_roster, roster_from_st
from rp_context.errors import GroupError
from rp_context.group import (
    CARD_FIELDS,
    group_card_fields,
    group_macro,
    group_members,
)
from rp_context.macros import MacroContext, expand_macros

from .conftest import Cast, make_card

LABELS = {"description": "Description", "personality": "Personality", "scenario": "Scenario",
          "mes_example": "Example Messages"}


def own(card, field: str) -> str:
    """A card's field as it appears for that card: trimmed, {{char}} → its name."""
    return re.sub(r"\{\{char\}\}", card.name, getattr(card.data, field).strip(), flags=re.I)


def expected_join(cast: Cast, field: str, included: list[str], *, sep: str = "\n") -> str:
    """SillyTavern's join, written out from the formula."""
    out = []
    for card in cast.cards:
        if card.name not in included or not getattr(card.data, field).strip():
            continue
        label = LABELS[field]
        prefix = re.sub("<fieldname>", label, cast.roster.join_prefix, flags=re.I).replace("{{char}}", card.name)
        suffix = re.sub("<fieldname>", label, cast.roster.join_suffix, flags=re.I).replace("{{char}}", card.name)
        out.append((prefix + sep if prefix else "") + own(card, field) + (sep + suffix if suffix else ""))
    return "\n".join(out)


def test_swap_holds_only_the_speakers_card(skerry: Cast) -> None:
    for card in skerry.cards:
        f = group_card_fields(skerry.roster, skerry.cards, card.name, mode="swap")
        assert f.mode == "swap" and f.included == (card.name,)
        for field in CARD_FIELDS:
            assert f.text(field) == own(card, field)
        assert {p.member for p in f.pieces} == {card.name}
        assert "\n" not in {p.text for p in f.pieces if p.part == "separator"}  # one member: no joins
        assert f.post_history_instructions == own(card, "post_history_instructions")
        assert all(d.member == card.name for d in f.depth_prompts)


def test_join_holds_every_members_card_in_roster_order(skerry: Cast) -> None:
    assert skerry.roster.join_prefix  # the sample roster wraps each member's fields
    f = group_card_fields(skerry.roster, skerry.cards, skerry.names[1], mode="join")
    assert f.included == tuple(skerry.names)
    for field in CARD_FIELDS:
        assert f.text(field) == expected_join(skerry, field, skerry.names)
    # each member's piece starts with its own heading, in roster order
    heads = [f.description.index(f"[{n}'s Description]\n") for n in skerry.names]
    assert heads == sorted(heads) and heads[0] == 0
    assert "{{char}}" not in f.description and "<FIELDNAME>" not in f.description
    # the speaker's own prompts
    assert f.post_history_instructions == own(skerry.cards[1], "post_history_instructions")


def test_join_block_is_identical_for_every_speaker(skerry: Cast) -> None:
    blocks = []
    for name in skerry.names:
        f = group_card_fields(skerry.roster, skerry.cards, name, mode="join")
        blocks.append((f.as_dict(), f.pieces, f.depth_prompts))
    assert all(b == blocks[0] for b in blocks)
    swaps = {group_card_fields(skerry.roster, skerry.cards, n, mode="swap").description for n in skerry.names}
    assert len(swaps) == 3


def test_join_skips_muted_members_except_the_speaker(skerry: Cast) -> None:
    wren, tobias, absalom = skerry.names
    cast = skerry.with_roster(muted=[skerry.key(absalom)])
    f = group_card_fields(cast.roster, cast.cards, wren, mode="join")
    assert f.included == (wren, tobias)
    assert f.description == expected_join(cast, "description", [wren, tobias])
    assert f"[{absalom}'s" not in f.description
    assert all(d.member != absalom for d in f.depth_prompts)
    # the muted member speaking (picked by hand) keeps its own card
    g = group_card_fields(cast.roster, cast.cards, absalom, mode="join")
    assert g.included == (wren, tobias, absalom)
    # join_with_muted includes everyone, whoever speaks
    for name in skerry.names:
        h = group_card_fields(cast.roster, cast.cards, name, mode="join_with_muted")
        assert h.included == tuple(skerry.names)
        assert h.description == expected_join(cast, "description", skerry.names)


def test_pieces_trace_every_character_to_its_member(skerry: Cast) -> None:
    f = group_card_fields(skerry.roster, skerry.cards, skerry.names[0], mode="join")
    by_name = {c.name: c for c in skerry.cards}
    for field in CARD_FIELDS:
        pieces = f.pieces_of(field)
        assert "".join(p.text for p in pieces) == f.text(field)
        for p in pieces:
            if p.part == "value":
                assert p.text == own(by_name[p.member], field)
            elif p.part == "separator":
                assert p.text == "\n" and p.member is None
            else:
                assert p.member in by_name and p.part in ("prefix", "suffix")
        for offset in range(0, len(f.text(field)), 97):
            p = f.owner_at(field, offset)
            assert p.text[offset - p.start] == f.text(field)[offset]
    # a character in Tobias's description belongs to Tobias
    at = f.description.index(own(skerry.cards[1], "description")[:40])
    assert f.owner_at("description", at).member == skerry.names[1]
    with pytest.raises(IndexError):
        f.owner_at("description", len(f.description))


def test_wrap_off_and_fieldname_suffix(skerry: Cast) -> None:
    cast = skerry.with_roster(join_prefix="<fieldname> of {{char}}:", join_suffix="(end <FIELDNAME>)")
    f = group_card_fields(cast.roster, cast.cards, skerry.names[0], mode="join", wrap=False)
    assert f.personality == expected_join(cast, "personality", skerry.names, sep="")
    first = skerry.cards[0]
    assert f.personality.startswith(f"Personality of {first.name}:{own(first, 'personality')}(end Personality)\n")
    g = group_card_fields(cast.roster, cast.cards, skerry.names[0], mode="join", wrap=True)
    assert g.mes_example.startswith(f"Example Messages of {first.name}:\n")


def test_scenario_override_replaces_the_joined_scenario(skerry: Cast) -> None:
    f = group_card_fields(skerry.roster, skerry.cards, skerry.names[0], scenario_override="  A wedding.  ")
    assert f.scenario == "A wedding."
    assert [(p.part, p.member) for p in f.pieces_of("scenario")] == [("override", None)]


def test_depth_prompts_of_included_members(skerry: Cast) -> None:
    wren, tobias, absalom = skerry.names
    cast = skerry.with_card(wren, depth_prompt={"prompt": "{{char}} is tired.", "depth": "2", "role": "user"})
    cast = cast.with_card(tobias, depth_prompt={"prompt": "  ", "depth": 1})  # blank: none
    join = group_card_fields(cast.roster, cast.cards, tobias, mode="join")
    members_with = [c.name for c in cast.cards if (c.data.extensions.get("depth_prompt") or {}).get("prompt", "").strip()]
    assert [d.member for d in join.depth_prompts] == members_with
    w = join.depth_prompts[0]
    assert (w.member, w.text, w.depth, w.role) == (wren, f"{wren} is tired.", 2, "user")
    swap = group_card_fields(cast.roster, cast.cards, wren, mode="swap")
    assert [d.member for d in swap.depth_prompts] == [wren]
    assert group_card_fields(cast.roster, cast.cards, tobias, mode="swap").depth_prompts == ()


def test_mode_defaults_to_the_roster_then_join(tmp_path, skerry: Cast, sample_roster_path) -> None:
    doc = yaml.safe_load(sample_roster_path.read_text())
    assert doc["generation_mode"] == group_card_fields(skerry.roster, skerry.cards, skerry.names[0]).mode
    doc["generation_mode"] = "swap"
    (tmp_path / "swap.roster.yaml").write_text(yaml.safe_dump(doc))
    del doc["generation_mode"]
    (tmp_path / "plain.roster.yaml").write_text(yaml.safe_dump(doc))
    swap = load_roster(tmp_path / "swap.roster.yaml").roster
    plain = load_roster(tmp_path / "plain.roster.yaml").roster
    assert group_card_fields(swap, skerry.cards, skerry.names[0]).mode == "swap"
    assert group_card_fields(plain, skerry.cards, skerry.names[0]).mode == "join"


def test_expand_hook_runs_the_macro_engine_per_member(skerry: Cast) -> None:
    members = group_members(skerry.roster, skerry.cards)
    group = group_macro(members)
    assert group == ", ".join(skerry.names)

    def expand(text, member):
        return expand_macros(text, MacroContext(user="Sam", char=member.char, group=group))

    f = group_card_fields(skerry.roster, skerry.cards, skerry.names[0], mode="join", expand=expand)
    assert "{{user}}" not in f.scenario and "Sam" in f.scenario
    plain = group_card_fields(skerry.roster, skerry.cards, skerry.names[0], mode="join")
    assert plain.scenario.count("{{user}}") == sum(c.data.scenario.count("{{user}}") for c in skerry.cards)


def test_sillytavern_group_file_with_avatar_keys(skerry: Cast) -> None:
    st = {
        "id": "1700000000000", "name": "Skerry", "members": ["wren.png", "tobias.png", "pike.png"],
        "disabled_members": ["pike.png"], "activation_strategy": 1, "generation_mode": 2,
        "generation_mode_join_prefix": "", "generation_mode_join_suffix": "", "allow_self_responses": False,
        "chat_id": "c1", "chats": ["c1"],
    }
    roster = roster_from_st(st)
    cards = dict(zip(st["members"], skerry.cards, strict=True))
    f = group_card_fields(roster, cards, "tobias.png")
    assert f.mode == "join_with_muted" and f.speaker == skerry.names[1]
    assert f.description == "\n".join(own(c, "description") for c in skerry.cards)
    from rp_context.group import pick_speakers

    assert pick_speakers(roster, cards, [], seed="s") == skerry.names[:2]  # list order, Pike muted
    by_name = {c.name: c for c in skerry.cards}
    assert pick_speakers(roster, by_name, [], seed="s") == skerry.names[:2]
    # keyed by card name in another order: matched by name, not by position
    sample_roster = skerry.roster
    shuffled = {c.name: c for c in reversed(skerry.cards)}
    f = group_card_fields(sample_roster, shuffled, skerry.names[0], mode="join")
    assert f.included == tuple(skerry.names)


def test_missing_cards_and_strangers_are_group_errors(skerry: Cast) -> None:
    with pytest.raises(GroupError, match="3 members but 2 cards"):
        group_card_fields(skerry.roster, skerry.cards[:2], skerry.names[0])
    with pytest.raises(GroupError, match="no card was given"):
        group_card_fields(skerry.roster, {"someone.json": skerry.cards[0]}, skerry.names[0])
    with pytest.raises(GroupError, match="not a member"):
        group_card_fields(skerry.roster, skerry.cards, "Sam")


def test_nickname_is_char(skerry: Cast) -> None:
    card = make_card("Tobias Marrow", nickname="Toby", description="{{char}} skippers the boat.")
    cards = [skerry.cards[0], card, skerry.cards[2]]
    f = group_card_fields(skerry.roster, cards, "Tobias Marrow", mode="join")
    assert "[Toby's Description]\nToby skippers the boat." in f.description


def test_greetings_one_per_unmuted_member_seeded(skerry: Cast) -> None:
    from rp_context.group import group_greetings

    wren, tobias, absalom = skerry.names
    cast = skerry.with_roster(muted=[skerry.key(tobias)])
    got = group_greetings(cast.roster, cast.cards, seed="chat-9")
    assert [g.member for g in got] == [wren, absalom]
    for g, card in zip(got, (cast.cards[0], cast.cards[2]), strict=True):
        assert g.options == (card.data.first_mes, *card.data.alternate_greetings, *card.data.group_only_greetings)
        assert g.text == g.options[g.index]
    assert group_greetings(cast.roster, cast.cards, seed="chat-9") == got
    everyone = group_greetings(cast.roster, cast.cards, seed="chat-9", include_muted=True)
    assert [g.member for g in everyone] == skerry.names
    # over many chats every greeting of a member with alternates is used
    picks = {group_greetings(cast.roster, cast.cards, seed=f"c{i}")[0].text for i in range(40)}
    assert picks == set(got[0].options) and len(picks) > 1
