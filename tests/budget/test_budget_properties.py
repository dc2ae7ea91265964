"""Budget manager properties over random chats, windows and policies, with the model's own tokenizer."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rp_context.assembly import AssemblySettings, AuthorNote, assemble
from rp_context.budget import fit_prompt
from rp_context.cards import load_card
from rp_context.errors import BudgetError
from rp_context.policy import BudgetPolicy
from rp_context.presets.library import load_preset
from rp_context.segments import SegmentKind, Tier
from rp_context.synth import synthetic_chat

FAMILIES = ["chatml", "llama3", "gemma", "alpaca", "mistral-v7"]

policies = st.builds(
    BudgetPolicy,
    batching=st.booleans(),
    consolidation=st.booleans(),
    stripping=st.booleans(),
    examples=st.sampled_from(["keep", "never", "gradual", "threshold"]),
    eviction=st.sampled_from(["chunked", "per_message"]),
    low_water=st.sampled_from([0.5, 0.75, 0.9, 1.0]),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n=st.integers(0, 160),
    chars=st.integers(1, 3),
    n_ctx=st.sampled_from([768, 1024, 1536, 2048, 4096]),
    reserve=st.sampled_from([64, 128, 256]),
    family=st.sampled_from(FAMILIES),
    policy=policies,
    seed=st.integers(0, 10_000),
    narrator=st.sampled_from([0, 4]),
    note_depth=st.sampled_from([None, 0, 1, 3, 6]),
)
def test_fitted_prompt_invariants(repo_dir, smollm_tokenizer, n, chars, n_ctx, reserve, family, policy,
                                  seed, narrator, note_depth) -> None:
    names = ("Wren Halloway", "Tobias Marrow", "Absalom Pike")[:chars]
    card = load_card(repo_dir / "cards" / "wren-halloway.json").card
    cards = [card] + [card.model_copy(deep=True, update={}) for _ in names[1:]]
    for c, name in zip(cards, names, strict=True):
        c.data.name = name
    chat = synthetic_chat(n, characters=names, seed=seed, narrator_every=narrator)
    settings = AssemblySettings(author_note=AuthorNote(text="[Keep the story moving.]", depth=note_depth or 0,
                                                       interval=1 if note_depth is not None else 0))
    assembled = assemble(
        cards=cards, chat=chat, instruct=load_preset(family, "instruct"),
        context=load_preset("default", "context"), sysprompt=load_preset("roleplay", "sysprompt"),
        settings=settings,
    )
    budget = n_ctx - reserve
    try:
        fitted = fit_prompt(assembled, smollm_tokenizer, n_ctx=n_ctx, reserve=reserve, policy=policy)
    except BudgetError as exc:
        # only when the pinned part alone cannot fit; the breakdown says where it goes
        pinned = [s for s in assembled.segments if s.pinned]
        pinned_tokens = sum(smollm_tokenizer.count(s.text) for s in pinned)
        assert pinned_tokens > budget * 0.8, exc
        assert exc.breakdown
        return
    text = fitted.text
    # 1. never over budget, and the report's count is the model tokenizer's count of the text
    assert len(fitted.ids) <= budget
    assert fitted.report.tokens == len(fitted.ids)
    assert fitted.ids == smollm_tokenizer.tokenize(text, special=True)
    # 2. pinned segments are always present
    final_ids = {s.id for s in fitted.segments}
    for seg in assembled.segments:
        if seg.pinned and seg.text:
            assert seg.id in final_ids
            assert seg.text in fitted.flat.segment_text(seg.id) or seg.text in text
    # 3. no message appears partially; 4. stripping never changes content
    spans_by_seg = {}
    for span in fitted.flat.spans:
        spans_by_seg.setdefault(span.segment, []).append(span.part.text)
    dropped = set(fitted.report.dropped)
    for m in chat.messages:
        sid = f"msg:{m.id}"
        if m.id in dropped:
            assert sid not in spans_by_seg
        else:
            rendered = "".join(spans_by_seg.get(sid, []))
            assert m.text in rendered or m.text.strip() in rendered, (m.id, rendered)
    # evicted messages are the oldest ones, contiguous
    order = [m.id for m in chat.messages]
    if dropped:
        assert set(order[: len(dropped)]) == dropped
    # sections add up to the exact total
    assert sum(fitted.report.sections.values()) == fitted.report.tokens
    assert all(v >= 0 for v in fitted.report.sections.values())


def test_pinned_overflow_raises_with_breakdown(repo_dir, smollm_tokenizer) -> None:
    card = load_card(repo_dir / "cards" / "wren-halloway.json").card
    assembled = assemble(cards=[card], chat=synthetic_chat(4), instruct=load_preset("chatml", "instruct"),
                         context=load_preset("default", "context"), sysprompt=load_preset("roleplay", "sysprompt"))
    try:
        fit_prompt(assembled, smollm_tokenizer, n_ctx=300, reserve=100)
    except BudgetError as exc:
        assert exc.breakdown["card"] > 200
        assert "only 200 fit" in str(exc)
    else:
        raise AssertionError("expected BudgetError")


def test_stripping_bands_and_batching_in_a_group(repo_dir, smollm_tokenizer) -> None:
    names = ("Wren Halloway", "Tobias Marrow", "Absalom Pike")
    card = load_card(repo_dir / "cards" / "wren-halloway.json").card
    cards = []
    for name in names:
        c = card.model_copy(deep=True)
        c.data.name = name
        cards.append(c)
    chat = synthetic_chat(600, characters=names, seed=3, narrator_every=7)
    assembled = assemble(cards=cards, chat=chat, instruct=load_preset("chatml", "instruct"),
                         context=load_preset("default", "context"), sysprompt=load_preset("roleplay", "sysprompt"))
    # low_water 0.75: a window of four chunks, the oldest two stripped between evictions
    fitted = fit_prompt(assembled, smollm_tokenizer, n_ctx=8192, reserve=256, policy=BudgetPolicy(low_water=0.75))
    r = fitted.report
    assert r.reductions[:3] == ["batching", "consolidation", "stripping"]
    assert r.batched and r.consolidated and r.dropped
    tiers = [s.tier for s in fitted.segments if s.kind == SegmentKind.CHAT_MESSAGE]
    # oldest kept band content-only, then markers, then full: tiers never go back up
    rank = {Tier.CONTENT: 0, Tier.MARKERS: 1, Tier.FULL: 2}
    assert [rank[t] for t in tiers] == sorted(rank[t] for t in tiers)
    assert {Tier.CONTENT, Tier.MARKERS, Tier.FULL} <= set(tiers)
    plain = fit_prompt(assembled, smollm_tokenizer, n_ctx=8192, reserve=256,
                       policy=BudgetPolicy(low_water=0.75, batching=False, consolidation=False, stripping=False))
    assert r.structure_percent < plain.report.structure_percent
