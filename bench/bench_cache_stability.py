"""Benchmark: how often a new turn's prompt keeps the previous prompt as its prefix.

300 simulated turns (the user's message and the character's reply each turn) of a one-on-one
chat at a 2,048-token window, prompts built by `build_prompt` with the cache-stable policy and,
beside it in the same run, the `sillytavern` policy (per-message trimming), which is the
baseline. No model runs: the prompts' token ids are compared, which is what llama.cpp's prompt
cache does. For each turn:

- prefix kept: the new prompt starts with the whole previous prompt up to its volatile tail
  (DESIGN.md: depth injections and lore at depth, the author's note, post-history
  instructions, the generation header), so llama.cpp only evaluates what follows;
- re-evaluated: tokens after the longest common prefix with the previous prompt;
- new: tokens from the first new message to the end (the least any cache could evaluate).

Run: python bench/bench_cache_stability.py [--quick]. Targets: prefix kept on >= 90% of turns,
mean re-evaluated <= 2x mean new tokens.
"""

from __future__ import annotations

import argparse
import sys
from statistics import mean

from _common import (
    USER,
    group_cast,
    make_chat,
    model_and_tokenizer,
    next_speaker,
    prefix_chat,
    solo_cast,
    stable_prefix_tokens,
    target_line,
    tokens_before_message,
)

from rp_context.pipeline import build_prompt, load_setup
from rp_context.tokens import common_prefix

TARGET_KEPT = 0.90
TARGET_REEVAL = 2.0


def simulate(policy: str, args: argparse.Namespace, turns: int) -> dict[str, float]:
    _, tok = model_and_tokenizer(args.model)
    cast = group_cast() if args.group else solo_cast()
    setup = load_setup(budget=policy)
    chat = make_chat(args.start + 2 * turns, cast.names, seed=11, narrator_every=9 if args.group else 0)
    kept = 0
    reeval: list[int] = []
    new: list[int] = []
    fill: list[int] = []
    evictions = 0
    prev = None
    prev_stable = 0
    for k in range(turns + 1):
        n = args.start + 2 * k
        fitted = build_prompt(cast, prefix_chat(chat, n), setup, tok, n_ctx=args.n_ctx, reserve=args.reserve,
                              speaker=next_speaker(chat, n, cast.names), previous_ids=prev.ids if prev else None)
        ids = fitted.ids
        assert len(ids) <= args.n_ctx - args.reserve
        if prev is not None:
            common = common_prefix(prev.ids, ids)
            kept += common >= prev_stable
            evicted = len(fitted.report.dropped) > len(prev.report.dropped)
            if args.verbose and common < prev_stable:
                print(f"    {policy} turn {k}: prefix {common} < {prev_stable}, {len(ids)} tokens, "
                      f"{'eviction' if evicted else 'no eviction'}, reductions {fitted.report.reductions}")
            reeval.append(len(ids) - common)
            first_new = chat.messages[n - 2].id
            new.append(len(ids) - tokens_before_message(fitted, tok, first_new))
            fill.append(len(ids))
            evictions += evicted
        prev = fitted
        prev_stable = stable_prefix_tokens(fitted, tok)
    return {
        "kept": kept / turns,
        "reeval": mean(reeval),
        "new": mean(new),
        "max_reeval": max(reeval),
        "fill": mean(fill),
        "evictions": evictions,
        "dropped": len(prev.report.dropped) if prev else 0,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="60 turns instead of 300")
    ap.add_argument("--turns", type=int, default=None)
    ap.add_argument("--start", type=int, default=2, help="messages already in the chat before turn 0")
    ap.add_argument("--n-ctx", type=int, default=2048)
    ap.add_argument("--reserve", type=int, default=256)
    ap.add_argument("--model", default=None)
    ap.add_argument("--verbose", action="store_true", help="print every turn that loses the prefix")
    ap.add_argument("--group", action="store_true", help="the five-character group (with narrator lines) instead")
    args = ap.parse_args()
    turns = args.turns or (60 if args.quick else 300)
    who = "five-character group" if args.group else "one-on-one"
    print(f"cache stability: {turns} turns, {who} with {USER}, window {args.n_ctx}, reserve {args.reserve}")
    rows = {}
    for policy in ("cache-stable", "sillytavern"):
        r = simulate(policy, args, turns)
        rows[policy] = r
        print(f"  {policy:13s} prefix kept {100 * r['kept']:5.1f}% of turns; re-evaluated mean {r['reeval']:6.1f} "
              f"(max {r['max_reeval']}) vs new mean {r['new']:.1f} tokens = {r['reeval'] / r['new']:.2f}x; "
              f"{r['evictions']} eviction steps; mean prompt {r['fill']:.0f} of {args.n_ctx - args.reserve} tokens")
    ours = rows["cache-stable"]
    st = rows["sillytavern"]
    print(target_line("turns keeping the previous prompt as prefix", f"{100 * ours['kept']:.1f}% "
                      f"(sillytavern {100 * st['kept']:.1f}%)", f">= {100 * TARGET_KEPT:.0f}%",
                      ours["kept"] >= TARGET_KEPT))
    ratio = ours["reeval"] / ours["new"]
    print(target_line("mean re-evaluated / mean new tokens", f"{ratio:.2f}x (sillytavern "
                      f"{st['reeval'] / st['new']:.2f}x)", f"<= {TARGET_REEVAL:.0f}x", ratio <= TARGET_REEVAL))
    return 0


if __name__ == "__main__":
    sys.exit(main())
