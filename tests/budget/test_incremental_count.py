"""The final exact count is incremental (pieces cut at special tokens, cached by text), and it
equals one pass over the prompt: for rendered prompts of every family, turn after turn, and for
content that carries special-token text or whitespace at the cuts."""

from __future__ import annotations

import random

import pytest

from rp_context.assembly import assemble
from rp_context.budget import fit_prompt
from rp_context.cards import load_card
from rp_context.presets.library import load_preset
from rp_context.synth import synthetic_chat
from rp_context.templates.render import token_ids
from rp_context.tokens import TextPart

FAMILIES = ["chatml", "llama3", "gemma", "alpaca", "mistral-v7", "phi3"]
WORDS = ["<|im_start|>user\n", "<|im_end|>\n", " hello", "  ", "\n\n", "<|im_end|>", "<|endoftext|>",
         "Ünï ", "x", " <|im_start|>", "<s>", "[INST]", "<|eot_id|>", "\t"]


def _random_parts(rnd: random.Random) -> list[TextPart]:
    return [TextPart(rnd.choice(WORDS), rnd.random() < 0.6) for _ in range(rnd.randint(1, 30))]


def _one_pass(counter, parts: list[TextPart]) -> list[int]:
    """The rule written out: structure and plain content tokenized as one run each, content
    that holds special-token text on its own as plain text."""
    pattern = counter._special_pattern()
    ids: list[int] = []
    run = ""
    for p in parts:
        if p.special or not pattern.search(p.text):
            run += p.text
            continue
        ids += counter.tokenize(run, special=True) + counter.tokenize(p.text, special=False)
        run = ""
    return ids + counter.tokenize(run, special=True)


def _check_random(counter) -> None:
    cache: dict[str, list[int]] = {}
    rnd = random.Random(7)
    for _ in range(300):
        parts = _random_parts(rnd)
        expected = _one_pass(counter, parts)
        assert counter.tokenize_parts(parts) == expected, parts
        assert counter.tokenize_parts_cached(parts, cache) == expected, parts
    assert cache  # the pieces were cached, so later prompts reuse them


def _check_blocks(counter) -> None:
    """Blocks kept across calls (the same lists, as a prompt's rendered turns) give one pass."""
    cache: dict[str, list[int]] = {}
    memo: dict = {}
    rnd = random.Random(11)
    heads = ["<|im_start|>user\n", "<|im_end|>\n", "<|endoftext|>", "<|eot_id|>"]
    pool = [[TextPart(rnd.choice(heads), True), *_random_parts(rnd)] for _ in range(40)]
    for _ in range(200):
        blocks = [(rnd.choice(pool), True) if rnd.random() < 0.7 else (_random_parts(rnd), False)
                  for _ in range(rnd.randint(1, 8))]
        parts = [p for b, _ in blocks for p in b]
        assert counter.tokenize_blocks_cached(blocks, cache, memo) == _one_pass(counter, parts), parts
    assert any(hit[1] is not None for hit in memo.values())  # some blocks were taken whole


def test_cached_pieces_equal_one_pass_tiktoken(tiktoken_counter) -> None:
    _check_random(tiktoken_counter)
    _check_blocks(tiktoken_counter)


@pytest.mark.model
def test_cached_pieces_equal_one_pass_model(smollm_tokenizer) -> None:
    _check_random(smollm_tokenizer)
    _check_blocks(smollm_tokenizer)


@pytest.mark.parametrize("family", FAMILIES)
def test_fitted_ids_equal_one_pass_turn_after_turn(repo_dir, tiktoken_counter, family) -> None:
    names = ("Wren Halloway", "Tobias Marrow")
    base = load_card(repo_dir / "cards" / "wren-halloway.json").card
    cards = [base.model_copy(deep=True, update={"data": base.data.model_copy(update={"name": n})})
             for n in names]
    chat = synthetic_chat(80, characters=names, seed=3)
    for n in (60, 62, 64):  # successive turns share most pieces; the window forces eviction
        part = chat.model_copy(update={"messages": chat.messages[:n]})
        assembled = assemble(cards=cards, chat=part, instruct=load_preset(family, "instruct"),
                             context=load_preset("default", "context"),
                             sysprompt=load_preset("roleplay", "sysprompt"))
        fitted = fit_prompt(assembled, tiktoken_counter, n_ctx=2048, reserve=256)
        one_pass = token_ids(fitted.flat.parts, tiktoken_counter,
                             bos_token=assembled.template.bos_token)
        assert fitted.ids == one_pass
        assert fitted.report.tokens == len(one_pass)
