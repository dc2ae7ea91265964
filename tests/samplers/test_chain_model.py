"""Each sampler setting acting in the in-process chain, with the real default model at fixed seeds."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

pytestmark = pytest.mark.model


def _logits(backend, ids: list[int]) -> np.ndarray:
    """The model's raw next-token logits after `ids` (the cache is left holding `ids`)."""
    llm = backend.llama
    backend.reset()  # a whole evaluation, as the prompt's was
    llm.eval(ids)
    n_vocab = llm.n_vocab()
    ptr = backend._lc.llama_get_logits_ith(llm.ctx, -1)
    return np.ctypeslib.as_array(ptr, shape=(n_vocab,)).astype(np.float64).copy()


def _probs(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max())
    return e / e.sum()


def _xtc_pick(logits: np.ndarray, threshold: float) -> tuple[int, bool]:
    """XTC at probability 1 then greedy: the least likely token at or above the threshold when
    two or more are; else the likeliest. Also says whether XTC cut anything."""
    p = _probs(logits)
    above = np.flatnonzero(p >= threshold)
    if len(above) >= 2:
        return int(above[np.argmin(p[above])]), True
    return int(np.argmax(p)), False


def _contested(backend, prompt: list[int]) -> tuple[list[int], np.ndarray]:
    """`prompt` extended greedily to the first position where two or more tokens are each at
    least 10% likely (where XTC acts), with the logits there."""
    ids = list(prompt)
    for _ in range(40):
        logits = _logits(backend, ids)
        if _xtc_pick(logits, 0.1)[1]:
            return ids, logits
        ids.append(int(np.argmax(logits)))
    raise AssertionError("the model never hesitated between two tokens")


def _repeated_4grams(ids: list[int]) -> int:
    grams = Counter(tuple(ids[i : i + 4]) for i in range(len(ids) - 3))
    return sum(n - 1 for n in grams.values())


def test_dry_reduces_repeated_4grams_on_a_looping_prompt(backend, smollm_tokenizer, plain) -> None:
    loop = "The cat sat on the mat. " * 6
    ids = smollm_tokenizer.tokenize(loop)
    base = plain(max_tokens=64)
    without = backend.stream(ids, sampler=base).collect()
    with_dry = backend.stream(ids, sampler=base.model_copy(update={"dry_multiplier": 0.8})).collect()
    r0, r1 = _repeated_4grams(without.token_ids), _repeated_4grams(with_dry.token_ids)
    assert r0 >= 20, without.text  # the model loops without DRY
    assert r1 < r0 / 2, (without.text, with_dry.text)
    assert "The cat sat on the mat." in without.text


def test_xtc_removes_the_top_choices_as_specified(backend, chat_prompt, plain) -> None:
    s = plain(xtc_probability=1.0, xtc_threshold=0.1, max_tokens=12)
    got = backend.stream(chat_prompt, sampler=s).collect().token_ids
    ids, cut, greedy_differs = list(chat_prompt), 0, 0
    for tok in got:
        logits = _logits(backend, ids)
        want, active = _xtc_pick(logits, 0.1)
        assert tok == want
        cut += active
        greedy_differs += active and want != int(np.argmax(logits))
        ids.append(tok)
    assert cut >= 2 and greedy_differs >= 2  # XTC acted, and changed the greedy choice


def test_logit_bias_changes_the_output_as_specified(backend, chat_prompt, plain) -> None:
    logits = _logits(backend, chat_prompt)
    first, second = (int(i) for i in np.argsort(-logits)[:2])
    plain_reply = backend.stream(chat_prompt, sampler=plain(max_tokens=4)).collect()
    assert plain_reply.token_ids[0] == first
    banned = backend.stream(
        chat_prompt, sampler=plain(max_tokens=4, logit_bias=[{"text": f"[{first}]", "value": -100}])
    ).collect()
    assert first not in banned.token_ids and banned.token_ids[0] == second
    low = int(np.argsort(logits)[len(logits) // 2])  # an unremarkable token
    pushed = backend.stream(
        chat_prompt, sampler=plain(max_tokens=1, logit_bias=[{"text": f"[{low}]", "value": 100}])
    ).collect()
    assert pushed.token_ids == [low]
    # text entries: every token of " word" is biased, at every position
    word = plain_reply.text.split()[0] if plain_reply.text.split() else "Hello"
    word_ids = backend.llama.tokenize((" " + word).encode(), add_bos=False, special=False)
    no_word = backend.stream(
        chat_prompt, sampler=plain(max_tokens=24, logit_bias=[{"text": word, "value": -100}])
    ).collect()
    assert not set(word_ids) & set(no_word.token_ids)


def test_banned_tokens_never_appear(backend, chat_prompt, plain) -> None:
    reply = backend.stream(chat_prompt, sampler=plain(max_tokens=16)).collect()
    ban = sorted(set(reply.token_ids[:3]))
    again = backend.stream(
        chat_prompt, sampler=plain(max_tokens=16, banned_tokens=[str(ban)])
    ).collect()
    assert not set(ban) & set(again.token_ids)


def test_sampler_order_is_honoured(backend, chat_prompt, plain) -> None:
    prompt, logits = _contested(backend, chat_prompt)
    xtc_choice, _ = _xtc_pick(logits, 0.1)
    assert xtc_choice != int(np.argmax(logits))
    common = dict(top_k=1, xtc_probability=1.0, xtc_threshold=0.1, max_tokens=1)
    k_first = backend.stream(
        prompt, sampler=plain(**common, sampler_order=["top_k", "xtc", "temperature"])
    ).collect()
    x_first = backend.stream(
        prompt, sampler=plain(**common, sampler_order=["xtc", "top_k", "temperature"])
    ).collect()
    assert k_first.token_ids == [int(np.argmax(logits))]  # one token left: XTC has nothing to cut
    assert x_first.token_ids == [xtc_choice]  # XTC cut first, top-k keeps what is left on top
    chain = backend._sampler(plain(sampler_order=["xtc", "top_k", "tfs_z", "temperature"]), [])
    assert chain.order == ("xtc", "top_k", "temperature", "dist")


def test_temperature_and_seed_repeat_and_vary(backend, chat_prompt, plain) -> None:
    hot = dict(temperature=1.3, max_tokens=16)
    a = backend.stream(chat_prompt, sampler=plain(**hot, seed=11)).collect()
    b = backend.stream(chat_prompt, sampler=plain(**hot, seed=11)).collect()
    c = [backend.stream(chat_prompt, sampler=plain(**hot, seed=n)).collect().text for n in (12, 13, 14)]
    assert a.text == b.text
    assert any(t != a.text for t in c)


def test_a_sillytavern_preset_drives_the_in_process_chain(backend, chat_prompt, reference_dir) -> None:
    from rp_context.presets import import_sillytavern_file
    from rp_context.sampling import SamplerSettings

    preset = import_sillytavern_file(reference_dir / "sillytavern" / "textgen" / "Universal-Light.json")
    s = SamplerSettings.model_validate(preset.model_dump(exclude={"name", "description"}))
    s = s.model_copy(update={"seed": 3, "max_tokens": 16})
    chain = backend._sampler(s, list(chat_prompt))
    assert list(chain.order) == [*s.chain_order(), "dist"]  # the preset's samplers, in its order
    first = backend.stream(chat_prompt, sampler=s).collect()
    again = backend.stream(chat_prompt, sampler=s).collect()
    assert first.text.strip() and first.text == again.text  # seeded through the whole chain
    greedy = backend.stream(chat_prompt, sampler=s.model_copy(update={"temperature": 0.0})).collect()
    hot = [backend.stream(chat_prompt, sampler=s.model_copy(update={"seed": k})).collect().text
           for k in (4, 5, 6)]
    assert any(t != greedy.text for t in [first.text, *hot])  # temperature 1.25 really samples
