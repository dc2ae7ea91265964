"""Who speaks next: natural, list, pooled and manual order on the three-member sample roster."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rp_context.chat import ChatMessage
from rp_context.errors import GroupError
from rp_context.group import as_history, mentioned_members, pick_speakers, talkativeness

from .conftest import Cast

SEEDS = [f"chat-1:{n}" for n in range(200)]


def user(text: str, name: str = "Sam") -> dict:
    return {"name": name, "is_user": True, "mes": text}


def bot(name: str, text: str = "...", avatar: str | None = None) -> dict:
    msg = {"name": name, "is_user": False, "mes": text}
    if avatar:
        msg["original_avatar"] = avatar
    return msg


def silent(cast: Cast) -> Cast:
    """Everyone at talkativeness 0: only mentions wake anyone."""
    for name in cast.names:
        cast = cast.with_card(name, talkativeness=0)
    return cast


def chatty(cast: Cast) -> Cast:
    for name in cast.names:
        cast = cast.with_card(name, talkativeness=1)
    return cast


# ---------------------------------------------------------------------------------- list


def test_list_is_every_unmuted_member_in_roster_order(skerry: Cast) -> None:
    got = pick_speakers(skerry.roster, skerry.cards, [user("hello")], strategy="list", seed="x")
    assert got == skerry.names
    muted = skerry.with_roster(muted=[skerry.roster.members[1]])
    got = pick_speakers(muted.roster, muted.cards, [user("hello")], strategy="list", seed="x")
    assert got == [skerry.names[0], skerry.names[2]]


# ------------------------------------------------------------------------------- natural


def test_natural_mentions_reply_in_the_order_they_are_named(skerry: Cast) -> None:
    wren, tobias, absalom = skerry.names
    quiet = silent(skerry)
    text = f"{absalom.split()[0]}, ask {wren.split()[-1].lower()} for the key."  # "Absalom ... halloway"
    for seed in SEEDS[:20]:
        got = pick_speakers(quiet.roster, quiet.cards, [user(text)], activation_text=text, user_typed=True, seed=seed)
        assert got == [absalom, wren]
    assert tobias not in got


def test_natural_mention_is_always_first(skerry: Cast) -> None:
    wren, tobias, absalom = skerry.names
    history = [user("hi"), bot(wren)]
    for seed in SEEDS:
        got = pick_speakers(skerry.roster, skerry.cards, history, activation_text="Tobias?", seed=seed)
        assert got[0] == tobias
        assert len(got) == len(set(got))


def test_natural_bans_the_last_speaker_unless_allowed(skerry: Cast) -> None:
    wren, tobias, _ = skerry.names
    loud = chatty(skerry)
    history = [user("hi"), bot(tobias, "Tobias here.")]
    for seed in SEEDS[:50]:
        got = pick_speakers(loud.roster, loud.cards, history, activation_text="Tobias!", seed=seed)
        assert tobias not in got
        assert set(got) == set(skerry.names) - {tobias}
    # the user typing lifts the ban, and so does allow_self_responses
    got = pick_speakers(loud.roster, loud.cards, history, activation_text="Tobias!", user_typed=True, seed="s")
    assert got[0] == tobias and set(got) == set(skerry.names)
    selfish = loud.with_roster(allow_self_responses=True)
    got = pick_speakers(selfish.roster, selfish.cards, history, activation_text="Tobias!", seed="s")
    assert got[0] == tobias and set(got) == set(skerry.names)
    assert wren in got


def test_natural_talkativeness_rolls_follow_the_cards(skerry: Cast) -> None:
    """Over many seeds each member is picked (without mentions, before the fallback) about as
    often as its talkativeness says."""
    counts: Counter[str] = Counter()
    n = 600
    history = [user("The storm is getting worse.")]
    for i in range(n):
        got = pick_speakers(skerry.roster, skerry.cards, history, user_typed=True, seed=f"roll:{i}")
        counts.update(got)
        assert got, "natural order always finds someone while a member has talkativeness > 0"
    for card in skerry.cards:
        p = talkativeness(card)
        everyone_missed = 1.0
        for other in skerry.cards:
            everyone_missed *= 1 - talkativeness(other)
        # picked by its roll, or as the fallback when every roll missed (1/3 of those cases)
        expected = p + everyone_missed / 3
        assert abs(counts[card.name] / n - expected) < 0.08, (card.name, counts[card.name] / n, expected)


def test_natural_shuffles_differently_across_seeds_and_repeats_for_one_seed(skerry: Cast) -> None:
    loud = chatty(skerry)
    history = [user("Evening, all.")]
    orders = {tuple(pick_speakers(loud.roster, loud.cards, history, user_typed=True, seed=s)) for s in SEEDS[:60]}
    assert all(sorted(o) == sorted(skerry.names) for o in orders)
    assert len(orders) == 6  # every permutation of three shows up over 60 seeds
    first = pick_speakers(skerry.roster, skerry.cards, history, seed="fixed:7")
    assert all(pick_speakers(skerry.roster, skerry.cards, history, seed="fixed:7") == first for _ in range(5))
    picks = {tuple(pick_speakers(skerry.roster, skerry.cards, history, seed=s)) for s in SEEDS[:30]}
    assert len(picks) > 3


def test_talkativeness_zero_speaks_only_when_named(skerry: Cast) -> None:
    wren, tobias, absalom = skerry.names
    cast = skerry.with_card(absalom, talkativeness="0")
    for seed in SEEDS:
        assert absalom not in pick_speakers(cast.roster, cast.cards, [user("So.")], user_typed=True, seed=seed)
    got = pick_speakers(cast.roster, cast.cards, [user("Pike?")], user_typed=True, seed="a")
    assert got[0] == absalom
    quiet = silent(skerry)
    assert pick_speakers(quiet.roster, quiet.cards, [user("So.")], user_typed=True, seed="a") == []


def test_activation_text_defaults_to_the_last_message(skerry: Cast) -> None:
    _, tobias, absalom = skerry.names
    quiet = silent(skerry)
    history = [user("hello"), bot(tobias, "Mr Pike, your tea's gone cold.")]
    assert pick_speakers(quiet.roster, quiet.cards, history, seed="z") == [absalom]


def test_mentions_match_whole_name_words(prefixes: Cast) -> None:
    from rp_context.group import group_members

    members = group_members(prefixes.roster, prefixes.cards)
    assert [m.name for m in mentioned_members("Anna, where is Ann?", members)] == ["Anna", "Ann"]
    assert [m.name for m in mentioned_members("annabel? LEE!", members)] == ["Annabel Lee"]
    assert mentioned_members("Annie and Annabelle", members) == []
    got = pick_speakers(prefixes.roster, prefixes.cards, [user("Lee, then anna")], user_typed=True, seed="q")
    assert got == ["Annabel Lee", "Anna"]


# -------------------------------------------------------------------------------- pooled


def test_pooled_picks_who_has_not_spoken_since_the_user(skerry: Cast) -> None:
    wren, tobias, absalom = skerry.names
    history = [user("hi"), bot(wren), bot(tobias)]
    for seed in SEEDS[:40]:
        assert pick_speakers(skerry.roster, skerry.cards, history, strategy="pooled", seed=seed) == [absalom]
    # after the user speaks again everyone is fresh
    again = [*history, bot(absalom), user("and now?")]
    seen = {pick_speakers(skerry.roster, skerry.cards, again, strategy="pooled", seed=s, user_typed=True)[0] for s in SEEDS[:40]}
    assert seen == set(skerry.names)


def test_pooled_when_all_have_spoken_avoids_the_last_speaker(skerry: Cast) -> None:
    wren, tobias, absalom = skerry.names
    history = [user("hi"), bot(wren), bot(absalom), bot(tobias)]
    seen = set()
    for seed in SEEDS[:60]:
        got = pick_speakers(skerry.roster, skerry.cards, history, strategy="pooled", seed=seed)
        assert len(got) == 1 and got[0] != tobias
        seen.add(got[0])
    assert seen == {wren, absalom}


def test_pooled_identifies_authors_by_avatar(skerry: Cast) -> None:
    """SillyTavern messages carry the member's avatar; a renamed message still counts."""
    wren, tobias, absalom = skerry.names
    history = [
        user("hi"),
        bot("Keeper", avatar=skerry.key(wren)),
        bot("Skipper", avatar=skerry.key(tobias)),
    ]
    assert pick_speakers(skerry.roster, skerry.cards, history, strategy="pooled", seed="p") == [absalom]


# ------------------------------------------------------------------------ manual, forced


def test_manual_waits_for_a_pick_and_forced_always_speaks(skerry: Cast) -> None:
    wren, tobias, absalom = skerry.names
    muted = skerry.with_roster(muted=[skerry.key(absalom)], activation="manual")
    assert pick_speakers(muted.roster, muted.cards, [user("Absalom?")], seed="m") == []
    assert pick_speakers(muted.roster, muted.cards, [user("x")], seed="m", forced=absalom) == [absalom]
    assert pick_speakers(muted.roster, muted.cards, [user("x")], seed="m", forced=skerry.key(tobias)) == [tobias]
    with pytest.raises(GroupError, match="not a member"):
        pick_speakers(muted.roster, muted.cards, [], seed="m", forced="Nobody")


@settings(max_examples=60, deadline=None)
@given(
    seed=st.text(max_size=12),
    strategy=st.sampled_from(["natural", "list", "pooled", "manual"]),
    muted_index=st.integers(0, 2),
    history_len=st.integers(0, 6),
    author_picks=st.lists(st.integers(0, 3), min_size=6, max_size=6),
    mention=st.sampled_from(["", "Wren", "Tobias", "Absalom", "Pike and Halloway"]),
    user_typed=st.booleans(),
)
def test_properties_for_any_seed(
    skerry: Cast, seed, strategy, muted_index, history_len, author_picks, mention, user_typed
) -> None:
    """Muted members never speak; nobody speaks twice in one round; the last speaker is never
    picked by natural order without leave; the same state always gives the same pick."""
    cast = skerry.with_roster(muted=[skerry.roster.members[muted_index]])
    muted_name = skerry.names[muted_index]
    history = [user("hi")]
    for k in author_picks[:history_len]:
        history.append(user("go on") if k == 3 else bot(skerry.names[k]))
    got = pick_speakers(cast.roster, cast.cards, history, strategy=strategy, activation_text=mention,
                        user_typed=user_typed, seed=seed)
    assert muted_name not in got
    assert len(got) == len(set(got))
    assert set(got) <= set(skerry.names)
    last = history[-1]
    if strategy == "natural" and not user_typed and not last["is_user"]:
        assert last["name"] not in got
    if strategy == "pooled":
        assert len(got) == 1
    assert got == pick_speakers(cast.roster, cast.cards, history, strategy=strategy, activation_text=mention,
                                user_typed=user_typed, seed=seed)


def test_history_reads_rp_context_chat_messages(skerry: Cast) -> None:
    wren, tobias, absalom = skerry.names
    history = [
        ChatMessage(id="1", name="Sam", role="user", text="hi"),
        ChatMessage(id="2", name=wren, role="assistant", text="Evening."),
        ChatMessage(id="3", name=tobias, role="assistant", text="Aye."),
        ChatMessage(id="4", name=absalom, role="assistant", text="(hidden)", hidden=True),
    ]
    items = as_history(history)
    assert [i.is_user for i in items] == [True, False, False, False] and items[3].hidden
    # the hidden message does not count: Absalom has not spoken
    assert pick_speakers(skerry.roster, skerry.cards, history, strategy="pooled", seed="h") == [absalom]
