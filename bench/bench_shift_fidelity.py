"""Benchmark: what the context shift's approximation costs the model's predictions.

A one-on-one chat with the default model under the default budget (`full-window`: one turn
evicted at a time, memory on, a stand-in summary written whenever `memory_due` says so) at a
2,048-token window. Each turn's prompt goes through the llama backend with context shift, so
its KV cache keeps the history after each evicted span, and after each changed summary, moved
to new positions (`backends.shift.plan_reuse`). After N shifts, the next 200 tokens of the
chat are read on top of that cache and, in a second backend, on top of a fresh evaluation of
the same prompt; per position the next-token distributions are compared:

- KL divergence KL(fresh || shifted) in nats, mean and 95th percentile over the positions;
- top-1 agreement: share of positions whose most likely next token is the same.

The first row (0 shifts: the prompt before any eviction, cached by plain prefix reuse) is the
noise floor of evaluating in steps instead of at once. No target: the issue asks to show what
the approximation costs.

Run: python bench/bench_shift_fidelity.py [--quick] [--shifts 1,5,10,20] [--positions 200]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from _common import (
    USER,
    make_chat,
    model_and_tokenizer,
    prefix_chat,
    solo_cast,
    stand_in_summary,
)

from rp_context.backends.llama import LlamaBackend
from rp_context.backends.shift import plan_reuse
from rp_context.budget import FittedPrompt
from rp_context.chat import Chat
from rp_context.memory import memory_due, store_memory, stored_memories
from rp_context.pipeline import Cast, Setup, build_prompt, load_setup
from rp_context.sampling import SamplerSettings

ONE_TOKEN = SamplerSettings(temperature=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0,
                            max_tokens=1, seed=1)


def threads(args: argparse.Namespace) -> dict[str, int]:
    """Thread counts for the backends: llama.cpp's defaults unless --threads is given."""
    return {"n_threads": args.threads, "n_threads_batch": args.threads} if args.threads else {}


def logits_after(backend: LlamaBackend, tokens: list[int]) -> np.ndarray:
    """Log-probabilities of the next token at each of `tokens`, read on top of the cache as it
    is; the cache is left as it was."""
    lc, llm = backend._lc, backend.llama
    start, n_vocab = int(llm.n_tokens), int(llm._n_vocab)
    batch = lc.llama_batch_init(len(tokens), 0, 1)
    try:
        for i, tok in enumerate(tokens):
            batch.token[i], batch.pos[i] = tok, start + i
            batch.n_seq_id[i], batch.seq_id[i][0], batch.logits[i] = 1, 0, True
        batch.n_tokens = len(tokens)
        if lc.llama_decode(llm.ctx, batch) != 0:
            raise RuntimeError("llama_decode failed")
        rows = np.stack([np.ctypeslib.as_array(lc.llama_get_logits_ith(llm.ctx, i), shape=(n_vocab,))
                         for i in range(len(tokens))]).astype(np.float64)
    finally:
        lc.llama_batch_free(batch)
        llm._ctx.kv_cache_seq_rm(0, start, -1)
    rows -= rows.max(axis=1, keepdims=True)
    return rows - np.log(np.exp(rows).sum(axis=1, keepdims=True))


def compare(fresh: np.ndarray, shifted: np.ndarray) -> tuple[float, float, float]:
    """Mean and 95th-percentile KL(fresh || shifted), and top-1 agreement."""
    kl = (np.exp(fresh) * (fresh - shifted)).sum(axis=1)
    top1 = float((fresh.argmax(axis=1) == shifted.argmax(axis=1)).mean())
    return float(kl.mean()), float(np.percentile(kl, 95)), top1


class Walk:
    """The chat turn by turn through a shifting backend, summaries stored when due."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.model, self.tok = model_and_tokenizer(args.model)
        self.cast: Cast = solo_cast()
        self.setup: Setup = load_setup(budget="full-window")
        self.chat: Chat = make_chat(600, self.cast.names, seed=31)
        self.args = args
        self.backend = LlamaBackend(self.model, n_ctx=args.n_ctx, context_shift=True, **threads(args))
        self.n = 2
        self.shifts = self.gap_shifts = 0

    def prompt(self, n: int) -> FittedPrompt:
        return build_prompt(self.cast, prefix_chat(self.chat, n), self.setup, self.tok,
                            n_ctx=self.args.n_ctx, reserve=self.args.reserve)

    def would_shift(self) -> bool:
        """Whether the next turn's prompt would be planned as a shift against the cache."""
        nxt = self.prompt(self.n + 2).ids
        return bool(plan_reuse(self.backend.cached_ids, nxt, min_chunk=self.backend.shift_min_kept).chunks)

    def step(self) -> FittedPrompt:
        """One turn: the prompt for the next two messages, evaluated with shift; then the memory."""
        self.n += 2
        fitted = self.prompt(self.n)
        plan = plan_reuse(self.backend.cached_ids, fitted.ids, min_chunk=self.backend.shift_min_kept)
        m = self.backend.stream(fitted.ids, sampler=ONE_TOKEN).collect().metrics
        if m.shifted_tokens or plan.gaps:
            self.shifts += 1
            self.gap_shifts += bool(plan.gaps)
        now = prefix_chat(self.chat, self.n)
        if memory_due(fitted, stored_memories(now.messages), self.setup.budget, self.n):
            store_memory(self.chat, stand_in_summary(self.setup.budget.memory_length, self.n),
                         covers=now.messages[-1].id, front=fitted.report.front)
        return fitted

    def probe(self, positions: int) -> list[int]:
        """The next messages' text as tokens: what the model reads after the current prompt."""
        text = "\n".join(m.text for m in self.chat.messages[self.n : self.n + 12])
        return self.tok.tokenize(text)[:positions]


def measure(walk: Walk, ref: LlamaBackend, fitted: FittedPrompt, positions: int) -> tuple[float, float, float]:
    """The probe's distributions on the shifted cache against a fresh evaluation of the prompt."""
    assert walk.backend.cached_ids == fitted.ids, "the cache must hold exactly the prompt"
    probe = walk.probe(positions)
    shifted = logits_after(walk.backend, probe)
    ref.reset()
    ref.stream(fitted.ids, sampler=ONE_TOKEN).collect()
    fresh = logits_after(ref, probe)
    return compare(fresh, shifted)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="after 1, 5 and 10 shifts")
    ap.add_argument("--shifts", default=None, help="comma-separated shift counts (default 1,5,10,20,40)")
    ap.add_argument("--positions", type=int, default=200)
    ap.add_argument("--n-ctx", type=int, default=2048)
    ap.add_argument("--reserve", type=int, default=256)
    ap.add_argument("--model", default=None)
    ap.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: its own)")
    args = ap.parse_args()
    marks = [int(x) for x in (args.shifts or ("1,5,10" if args.quick else "1,5,10,20,40")).split(",")]
    walk = Walk(args)
    ref = LlamaBackend(walk.model, n_ctx=args.n_ctx, **threads(args))
    print(f"shift fidelity: {walk.model.name}, window {args.n_ctx}, full-window budget with {USER}, "
          f"{args.positions} positions per row")
    print(f"  {'shifts':>6s} {'of them with new text between runs':>36s}  KL mean     KL p95   top-1 agree")
    try:
        fitted = walk.step()
        while not walk.would_shift():
            fitted = walk.step()
        # the noise floor: the last prompt before the first shift, cached by plain prefix reuse
        _print(0, 0, measure(walk, ref, fitted, args.positions))
        for mark in marks:
            at = walk.n
            while walk.shifts < mark or walk.n == at:
                fitted = walk.step()
            _print(walk.shifts, walk.gap_shifts, measure(walk, ref, fitted, args.positions))
    finally:
        walk.backend.close()
        ref.close()
    return 0


def _print(shifts: int, gaps: int, figures: tuple[float, float, float]) -> None:
    kl, p95, top1 = figures
    print(f"  {shifts:6d} {gaps:36d}  {kl:8.4f}  {p95:8.4f}   {100 * top1:6.1f}%", flush=True)


if __name__ == "__main__":
    sys.exit(main())
