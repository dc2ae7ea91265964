"""The in-process sampler chain: llama.cpp's own samplers, in the configured order.

Built the way llama.cpp's `common_sampler_init` builds it (what its server runs): the logit
bias first (banned tokens as -inf), then each sampler of `sampler_order`, then the draw (`dist`),
or temperature and mirostat when mirostat is on. Nothing is re-implemented in Python; the chain
can be cloned so a banned phrase can rewind it (see `phrasebans.py`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ..sampling import DEFAULT_SAMPLER_ORDER, SamplerSettings, parse_token_list

__all__ = [
    "SamplerChain",
    "build_chain",
    "banned_phrases",
    "logit_bias_map",
    "history_window",
    "request_params",
]

Tokenize = Callable[[str], list[int]]

BAN = -math.inf


def _quoted(line: str) -> str | None:
    """The phrase of a `"quoted"` banned-tokens line (SillyTavern's banned-string form)."""
    return line[1:-1] if len(line) >= 2 and line.startswith('"') and line.endswith('"') else None


def banned_phrases(s: SamplerSettings) -> list[str]:
    """Every banned string: `banned_strings` plus `"quoted"` lines of `banned_tokens`."""
    extra = [q for q in (_quoted(line) for line in s.banned_tokens) if q]
    return list(dict.fromkeys([*s.banned_strings, *extra]))


def logit_bias_map(s: SamplerSettings, tokenize: Tokenize, n_vocab: int) -> dict[int, float]:
    """Token id -> bias from `logit_bias` (SillyTavern's text rules) and `banned_tokens` (-inf).

    Logit-bias text: `[ids]` raw ids, `{text}` verbatim, else the text with a leading space.
    Banned-tokens line: `[ids]`, `"quoted"` (a banned string, handled elsewhere), else its text.
    """
    out: dict[int, float] = {}

    def put(ids: Iterable[int], bias: float) -> None:
        for t in ids:
            if 0 <= t < n_vocab:
                out[t] = BAN if bias <= -100 else bias

    for entry in s.logit_bias:
        text = entry.text.strip()
        if not text:
            continue
        ids = parse_token_list(text)
        if ids is None:
            verbatim = text.startswith("{") and text.endswith("}")
            ids = tokenize(text[1:-1] if verbatim else " " + text)
        put(ids, entry.value)
    for line in s.banned_tokens:
        if not line or _quoted(line) is not None:
            continue
        ids = parse_token_list(line)
        put(ids if ids is not None else tokenize(line), BAN)
    return out


def history_window(s: SamplerSettings, n_ctx: int) -> int:
    """How many prompt tokens the penalty and DRY samplers need to see (-1 means the context)."""
    def span(n: int) -> int:
        return n_ctx if n < 0 else n

    need = span(s.repeat_last_n) if _penalties_on(s) else 0
    if s.dry_multiplier > 0:
        need = max(need, span(s.dry_penalty_last_n))
    return need


def _penalties_on(s: SamplerSettings) -> bool:
    return s.repeat_last_n != 0 and (
        s.repeat_penalty != 1.0 or s.frequency_penalty != 0.0 or s.presence_penalty != 0.0
    )


class SamplerChain:
    """A llama.cpp sampler chain; `sample` draws (and accepts) one token, optionally with some
    tokens excluded for this draw only; `snapshot`/`restore` rewind its whole state."""

    def __init__(self, sampler: Any, lc: Any, order: Sequence[str]) -> None:
        self._s = sampler
        self._lc = lc
        self.order = tuple(order)
        """The samplers in the chain, in order (for reports and tests)."""

    def sample(self, ctx: Any, idx: int = -1, exclude: Iterable[int] = ()) -> int:
        """Apply the chain to the logits at `idx` and draw a token (it is also accepted)."""
        banned = list(exclude)
        if banned:
            logits = self._lc.llama_get_logits_ith(ctx.ctx, idx)
            for t in banned:
                logits[t] = -math.inf
        return int(self._s.sample(ctx, idx))

    def accept(self, tok: int) -> None:
        self._s.accept(tok)

    def snapshot(self) -> Any:
        """A copy of the chain's state now (penalty history, DRY history, RNG, mirostat mu)."""
        return self._s.clone()

    def restore(self, snap: Any) -> None:
        """Go back to a snapshot (the snapshot stays usable)."""
        self._s = snap.clone()

    def close(self) -> None:
        self._s.close()


def build_chain(
    lc: Any,
    model: Any,
    s: SamplerSettings,
    *,
    n_ctx: int,
    tokenize: Tokenize,
    history: Sequence[int] = (),
) -> SamplerChain:
    """Build the chain for `s`; `history` (the prompt's ids) primes the penalty and DRY samplers."""
    from llama_cpp._internals import LlamaSampler

    n_vocab = int(lc.llama_vocab_n_tokens(model.vocab))
    seed = s.seed if s.seed is not None else int(lc.LLAMA_DEFAULT_SEED)
    seed &= 0xFFFFFFFF
    ch = LlamaSampler()
    order: list[str] = []
    bias = logit_bias_map(s, tokenize, n_vocab)
    if bias:
        ch.add_logit_bias(n_vocab, bias)
        order.append("logit_bias")

    def span(n: int) -> int:
        return n_ctx if n < 0 else n

    adders: dict[str, Callable[[], None]] = {
        "penalties": lambda: ch.add_penalties(
            n_vocab, span(s.repeat_last_n), s.repeat_penalty, s.frequency_penalty, s.presence_penalty
        ),
        "dry": lambda: ch.add_dry(
            model, s.dry_multiplier, s.dry_base, s.dry_allowed_length,
            span(s.dry_penalty_last_n), list(s.dry_sequence_breakers),
        ),
        "top_n_sigma": lambda: ch.add_top_n_sigma(s.top_n_sigma),
        "top_k": lambda: ch.add_top_k(s.top_k),
        "typ_p": lambda: ch.add_typical(s.typical_p, s.min_keep),
        "top_p": lambda: ch.add_top_p(s.top_p, s.min_keep),
        "min_p": lambda: ch.add_min_p(s.min_p, s.min_keep),
        "xtc": lambda: ch.add_xtc(s.xtc_probability, s.xtc_threshold, s.min_keep, seed),
        "temperature": lambda: ch.add_temp_ext(s.temperature, s.dynatemp_range, s.dynatemp_exponent),
    }
    if s.mirostat == 0:
        for name in s.chain_order():
            adders[name]()
            order.append(name)
        ch.add_dist(seed)
        order.append("dist")
    else:
        ch.add_temp(s.temperature)
        if s.mirostat == 1:
            ch.add_mirostat(n_vocab, seed, s.mirostat_tau, s.mirostat_eta, 100)
        else:
            ch.add_mirostat_v2(seed, s.mirostat_tau, s.mirostat_eta)
        order += ["temperature", f"mirostat_v{s.mirostat}"]
    window = history_window(s, n_ctx)
    for tok in history[len(history) - window :] if window else ():
        ch.accept(int(tok))
    return SamplerChain(ch, lc, order)



# -- servers ------------------------------------------------------------------------------------

ServerTokenize = Callable[[str], "list[int] | None"]


def _off(s: SamplerSettings) -> dict[str, bool]:
    """Which optional settings are in use (a server that lacks one must say so)."""
    return {
        "top_k": s.top_k > 0,
        "min_p": s.min_p > 0,
        "typical_p": s.typical_p < 1,
        "top_n_sigma": s.top_n_sigma > 0,
        "min_keep": s.min_keep > 0,
        "dynatemp_range": s.dynatemp_range > 0,
        "repeat_penalty": s.repeat_penalty != 1.0 and s.repeat_last_n != 0,
        "repeat_last_n": _penalties_on(s) and s.repeat_last_n != 64,
        "frequency_penalty": s.frequency_penalty != 0 and s.repeat_last_n != 0,
        "presence_penalty": s.presence_penalty != 0 and s.repeat_last_n != 0,
        "dry_multiplier": s.dry_multiplier > 0 and s.dry_penalty_last_n != 0,
        "xtc_probability": s.xtc_probability > 0 and s.xtc_threshold <= 0.5,
        "mirostat": s.mirostat != 0,
        "sampler_order": s.chain_order() != list(DEFAULT_SAMPLER_ORDER),
        "banned_strings": bool(banned_phrases(s)),
        "logit_bias": bool(s.logit_bias),
        "banned_tokens": any(_quoted(x) is None for x in s.banned_tokens),
    }


def _bias_entries(s: SamplerSettings) -> list[tuple[list[int] | str, float]]:
    """(token ids, or the exact text to tokenize, bias) for every logit-bias and banned-token
    entry, by SillyTavern's rules; bias -inf bans."""
    out: list[tuple[list[int] | str, float]] = []
    for entry in s.logit_bias:
        text = entry.text.strip()
        if not text:
            continue
        ids = parse_token_list(text)
        verbatim = text.startswith("{") and text.endswith("}")
        value = BAN if entry.value <= -100 else entry.value
        out.append((ids if ids is not None else (text[1:-1] if verbatim else " " + text), value))
    for line in s.banned_tokens:
        if line and _quoted(line) is None:
            ids = parse_token_list(line)
            out.append((ids if ids is not None else line, BAN))
    return out


def request_params(
    s: SamplerSettings,
    kind: str,
    *,
    n_ctx: int | None = None,
    tokenize: ServerTokenize | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """The completion request's sampling fields for a server of `kind`, and the settings in use
    that this server cannot apply (to report, not to drop silently).

    llama.cpp's server takes them all but banned strings; llama-cpp-python's the classic ones
    and mirostat; vLLM and OpenAI-style servers fewer still.
    """
    used = _off(s)
    p: dict[str, Any] = {"max_tokens": s.max_tokens, "temperature": s.temperature, "top_p": s.top_p}
    if s.seed is not None:
        p["seed"] = s.seed
    if kind == "llama.cpp":
        takes = set(used) - {"banned_strings"}
        span = (lambda n: n_ctx if n < 0 and n_ctx else n)  # noqa: E731
        p.update(
            top_k=s.top_k, min_p=s.min_p, typical_p=s.typical_p, top_n_sigma=s.top_n_sigma,
            min_keep=s.min_keep, dynatemp_range=s.dynatemp_range,
            dynatemp_exponent=s.dynatemp_exponent, repeat_penalty=s.repeat_penalty,
            repeat_last_n=span(s.repeat_last_n), frequency_penalty=s.frequency_penalty,
            presence_penalty=s.presence_penalty, dry_multiplier=s.dry_multiplier,
            dry_base=s.dry_base, dry_allowed_length=s.dry_allowed_length,
            dry_penalty_last_n=span(s.dry_penalty_last_n),
            dry_sequence_breakers=list(s.dry_sequence_breakers),
            xtc_probability=s.xtc_probability, xtc_threshold=s.xtc_threshold,
            mirostat=s.mirostat, mirostat_tau=s.mirostat_tau, mirostat_eta=s.mirostat_eta,
            samplers=s.chain_order(),
        )
        bias = [
            [t, False if v == BAN else v]
            for k, v in _bias_entries(s)
            for t in ([k] if isinstance(k, str) else k)
        ]
        if bias:
            p["logit_bias"] = bias
    elif kind == "llama-cpp-python":
        takes = {"top_k", "min_p", "typical_p", "repeat_penalty", "frequency_penalty",
                 "presence_penalty", "mirostat"}
        p.update(
            top_k=s.top_k, min_p=s.min_p, typical_p=s.typical_p, repeat_penalty=s.repeat_penalty,
            frequency_penalty=s.frequency_penalty, presence_penalty=s.presence_penalty,
            mirostat_mode=s.mirostat, mirostat_tau=s.mirostat_tau, mirostat_eta=s.mirostat_eta,
        )
        takes |= _llama_cpp_python_bias(p, _bias_entries(s))
    else:
        takes = {"frequency_penalty", "presence_penalty"}
        p.update(frequency_penalty=s.frequency_penalty, presence_penalty=s.presence_penalty)
        if kind == "vllm":
            takes |= {"top_k", "min_p", "repeat_penalty"}
            p.update(top_k=s.top_k if s.top_k > 0 else -1, min_p=s.min_p,
                     repetition_penalty=s.repeat_penalty)
        takes |= _openai_bias(p, _bias_entries(s), tokenize)
    unsupported = [name for name, on in used.items() if on and name not in takes]
    return p, unsupported


def _llama_cpp_python_bias(p: dict[str, Any], entries: list[tuple[list[int] | str, float]]) -> set[str]:
    """llama-cpp-python takes token ids, or token text with `logit_bias_type: tokens`; not both."""
    if not entries:
        return set()
    big = -1e9
    texts = [(k, v) for k, v in entries if isinstance(k, str)]
    if texts and len(texts) == len(entries):
        p["logit_bias"] = {k: (big if v == BAN else v) for k, v in texts}
        p["logit_bias_type"] = "tokens"
        return {"logit_bias", "banned_tokens"}
    p["logit_bias"] = {
        str(t): (big if v == BAN else v) for k, v in entries if not isinstance(k, str) for t in k
    }
    return set() if texts else {"logit_bias", "banned_tokens"}


def _openai_bias(
    p: dict[str, Any],
    entries: list[tuple[list[int] | str, float]],
    tokenize: ServerTokenize | None,
) -> set[str]:
    """OpenAI-style servers take token ids with a bias in [-100, 100]; text needs the server's
    tokenizer."""
    if not entries:
        return set()
    bias: dict[str, float] = {}
    ok = True
    for k, v in entries:
        ids = tokenize(k) if isinstance(k, str) and tokenize is not None else k
        if ids is None or isinstance(ids, str):
            ok = False
            continue
        for t in ids:
            bias[str(t)] = max(-100.0, min(100.0, v))
    if bias:
        p["logit_bias"] = bias
    return {"logit_bias", "banned_tokens"} if ok else set()
