"""What a chat's caches keep across turns (rendered middle turns, batched turns, segment costs,
the counted front) never changes a prompt: turn after turn, a fit with one `BudgetCache` and one
`AssemblyCache` equals a fit from nothing, span for span, for every instruct family."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rp_context.assembly import AssemblyCache, AssemblySettings, AuthorNote, assemble
from rp_context.budget import BudgetCache, fit_prompt
from rp_context.cards import load_card
from rp_context.cards.roster import GroupRoster
from rp_context.flatten import FlatMemo, flatten
from rp_context.policy import BudgetPolicy
from rp_context.presets.families import get_family, list_families
from rp_context.presets.library import load_preset
from rp_context.presets.sillytavern import import_sillytavern_file
from rp_context.segments import Tier
from rp_context.synth import synthetic_chat

NAMES = ("Wren Halloway", "Tobias Marrow", "Absalom Pike")
ST_INSTRUCT = ["ChatML-Names", "Llama 3 Instruct", "Llama-3-Instruct-Names", "Mistral V1", "Metharme",
               "Alpaca", "Gemma 2", "Vicuna 1.1", "Command R", "Synthia"]
TEMPLATES = [*list_families(), *(f"st:{name}" for name in ST_INSTRUCT)]


def _instruct(shared_dir, name: str):
    """A built-in family, or SillyTavern's own instruct preset (first/last sequences, names)."""
    if name.startswith("st:"):
        return import_sillytavern_file(shared_dir / "reference" / "sillytavern" / "instruct"
                                       / f"{name[3:]}.json")
    return get_family(name)


def _cards(repo_dir, n: int):
    base = load_card(repo_dir / "cards" / "wren-halloway.json").card
    return [base.model_copy(deep=True, update={"data": base.data.model_copy(update={"name": name})})
            for name in NAMES[:n]]


def _spans(fitted) -> list[tuple[str, bool, str | None]]:
    return [(s.part.text, s.part.special, s.segment) for s in fitted.flat.spans]


@pytest.mark.parametrize("family", TEMPLATES)
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chars=st.integers(1, 3), seed=st.integers(0, 999),
       n_ctx=st.sampled_from([2048, 4096]), eviction=st.sampled_from(["shift", "chunked"]),
       stripping=st.booleans(), mode=st.sampled_from(["normal", "continue", "impersonate"]),
       narrator=st.sampled_from([0, 3]), note=st.sampled_from([None, 0, 2]), nameless=st.booleans())
def test_cached_turns_equal_fresh_ones(repo_dir, shared_dir, tiktoken_counter, family, chars, seed, n_ctx,
                                       eviction, stripping, mode, narrator, note, nameless) -> None:
    cards = _cards(repo_dir, chars)
    chat = synthetic_chat(90, characters=NAMES[:chars], seed=seed, narrator_every=narrator)
    if nameless:  # imported replies without a name: the template names them after the speaker
        for m in chat.messages[::3]:
            if m.role == "assistant":
                m.name = ""
    roster = GroupRoster(name="G", members=list(NAMES[:chars])) if chars > 1 else None
    settings_ = AssemblySettings(author_note=AuthorNote(text="[Keep it moving.]", depth=note or 0,
                                                        interval=1 if note is not None else 0))
    policy = BudgetPolicy(eviction=eviction, stripping=stripping, low_water=0.75)
    instruct = _instruct(shared_dir, family)
    assembly_cache, budget_cache = AssemblyCache(), BudgetCache()
    for k, n in enumerate(range(40, 90, 7)):  # the chat grows, the speaker changes
        part = chat.model_copy(update={"messages": chat.messages[:n]})
        args = dict(cards=cards, chat=part, instruct=instruct, roster=roster, settings=settings_,
                    context=load_preset("default", "context"), speaker=NAMES[k % chars],
                    sysprompt=load_preset("roleplay", "sysprompt"), mode=mode)
        cached = fit_prompt(assemble(**args, cache=assembly_cache), tiktoken_counter, n_ctx=n_ctx,
                            reserve=128, policy=policy, cache=budget_cache)
        fresh = fit_prompt(assemble(**args), tiktoken_counter, n_ctx=n_ctx, reserve=128, policy=policy)
        assert cached.text == fresh.text and cached.ids == fresh.ids
        assert _spans(cached) == _spans(fresh) and cached.stop == fresh.stop
        assert cached.report.model_dump() == fresh.report.model_dump()


@pytest.mark.parametrize("family", TEMPLATES)
def test_flat_memo_reuses_middle_turns(repo_dir, shared_dir, family) -> None:
    """A memo's second render of the same segments equals a render without it; for templates
    whose messages render alone it reuses the middle turns (kept by their first segment)."""
    chat = synthetic_chat(30, characters=NAMES[:2], seed=5, narrator_every=4)
    assembled = assemble(cards=_cards(repo_dir, 2), chat=chat, instruct=_instruct(shared_dir, family),
                         context=load_preset("default", "context"), speaker=NAMES[0])
    segs = [s.model_copy(update={"tier": Tier.CONTENT}) if i % 5 == 4 else s
            for i, s in enumerate(assembled.segments)]
    memo = FlatMemo()
    kw = dict(user=assembled.user, char=assembled.char, group=True, stop_names=[NAMES[1]])
    plain = flatten(segs, assembled.template, **kw)
    first = flatten(segs, assembled.template, memo=memo, **kw)
    again = flatten(segs, assembled.template, memo=memo, **kw)
    for got in (first, again):
        assert [(s.part.text, s.part.special, s.segment) for s in got.spans] == \
               [(s.part.text, s.part.special, s.segment) for s in plain.spans]
        assert got.stop == plain.stop
    t = assembled.template
    local = t.system_role == "native" and not (t.strict_alternation or t.block_prefix or t.user_alignment_message)
    assert bool(memo._units) == local  # only such templates keep turns


def test_a_remembered_turn_is_never_grown_in_place(repo_dir) -> None:
    """A turn the memo keeps is taken whole only where it ends as before: a segment of its block
    after it (even past a skipped one) makes a new turn, and the kept one stays as it was."""
    chat = synthetic_chat(12, characters=NAMES[:1], seed=2)
    assembled = assemble(cards=_cards(repo_dir, 1), chat=chat, instruct=get_family("chatml"),
                         context=load_preset("default", "context"))
    segs = list(assembled.segments)
    k = next(i for i, s in enumerate(segs) if s.message_id == chat.messages[5].id)
    block = [s.model_copy(update={"block": "b"}) for s in segs[k:k + 2]]
    memo = FlatMemo()
    kw = dict(user=assembled.user, char=assembled.char)
    first = [*segs[:k], *block, *segs[k + 2:]]
    flatten(first, assembled.template, memo=memo, **kw)
    kept = {id(u): list(u.segments) for u in memo.turns.values()}
    extra = block[1].model_copy(update={"id": "extra", "text": "More."})
    header = next(s for s in segs if s.kind.value == "generation_header")
    grown = [*segs[:k], *block, header.model_copy(update={"id": "h2"}), extra, *segs[k + 2:]]
    for variant in (grown, first):
        got = flatten(variant, assembled.template, memo=memo, **kw)
        plain = flatten(variant, assembled.template, **kw)
        assert [(s.part.text, s.segment) for s in got.spans] == [(s.part.text, s.segment) for s in plain.spans]
    assert {id(u): list(u.segments) for u in memo.turns.values() if id(u) in kept} == \
           {i: v for i, v in kept.items() if i in {id(u) for u in memo.turns.values()}}
