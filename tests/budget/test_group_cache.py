"""Groups keep the cache: parts that differ by speaker sit in the volatile tail, so the whole
history is a prefix shared by every speaker of a round (cache-stable policies only)."""

from __future__ import annotations

from rp_context.assembly import AssemblySettings, AuthorNote, assemble
from rp_context.budget import common_prefix, fit_prompt
from rp_context.cards import GroupRoster, load_card
from rp_context.presets.library import load_preset
from rp_context.segments import SegmentKind
from rp_context.synth import synthetic_chat

NAMES = ("Wren Halloway", "Tobias Marrow", "Absalom Pike")


def _fit(repo_dir, counter, speaker: str, placement: str, mode: str = "join"):
    base = load_card(repo_dir / "cards" / "wren-halloway.json").card
    cards = []
    for name in NAMES:
        c = base.model_copy(deep=True)
        c.data.name = name
        c.data.extensions = {"depth_prompt": {"prompt": f"{name} hides a secret.", "depth": 4,
                                              "role": "system"}}
        cards.append(c)
    roster = GroupRoster(name="Skerry", members=list(NAMES), generation_mode=mode, activation="list")
    settings = AssemblySettings(keyword_lore=placement,
                                author_note=AuthorNote(text="[{{char}} speaks next.]", depth=4))
    chat = synthetic_chat(30, characters=NAMES, seed=3)
    a = assemble(cards=cards, chat=chat, instruct=load_preset("chatml", "instruct"),
                 context=load_preset("default", "context"), sysprompt=load_preset("roleplay", "sysprompt"),
                 roster=roster, speaker=speaker, settings=settings)
    return fit_prompt(a, counter, n_ctx=16384, reserve=256)


def _history_end(fitted, counter) -> int:
    """Tokens up to the last chat message's end."""
    last = max(i for i, s in enumerate(fitted.segments) if s.kind == SegmentKind.CHAT_MESSAGE)
    ids_before = fitted.flat.spans
    text = ""
    for span in ids_before:
        text += span.part.text
        if span.segment == fitted.segments[last].id and span.part.special:
            break
    return len(counter.tokenize(text, special=True))


def test_speakers_share_the_whole_history(repo_dir, tiktoken_counter) -> None:
    a = _fit(repo_dir, tiktoken_counter, NAMES[0], "tail")
    b = _fit(repo_dir, tiktoken_counter, NAMES[1], "tail")
    shared = common_prefix(a.ids, b.ids)
    assert shared >= _history_end(a, tiktoken_counter) - 2
    # the author's note (it says {{char}}) now sits after the last message
    kinds = [s.kind for s in a.segments]
    assert kinds.index(SegmentKind.AUTHOR_NOTE) > max(
        i for i, k in enumerate(kinds) if k == SegmentKind.CHAT_MESSAGE)


def test_sillytavern_placement_keeps_depth(repo_dir, tiktoken_counter) -> None:
    a = _fit(repo_dir, tiktoken_counter, NAMES[0], "story")
    b = _fit(repo_dir, tiktoken_counter, NAMES[1], "story")
    # the note says who speaks, four messages up: the prompts part there
    assert common_prefix(a.ids, b.ids) < _history_end(a, tiktoken_counter) - 50
