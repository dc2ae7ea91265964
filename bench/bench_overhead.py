"""Benchmark: structural overhead (tokens that are not content) of the fitted prompt.

The build-latency chat (2,400 messages, five characters and a user, narrator lines, 8,192-token
window, the default model's tokenizer), fitted three ways in the same run:

  plain ChatML: the `lossless` policy, every message its own turn (the baseline);
  batching + consolidation: `cache-stable` with stripping off, to show those two alone;
  cache-stable: the default policy as shipped.

Structure = exact prompt tokens minus the tokens of message, card and prompt text, as the
budget report counts them (template markers, `Name:` labels, separators, headers).

Run: python bench/bench_overhead.py [--quick]. Target: <= 7% with batching and consolidation
(the issue quotes ~13% for plain ChatML).
"""

from __future__ import annotations

import argparse
import sys

from _common import (
    USER,
    group_cast,
    history_end_tokens,
    make_chat,
    model_and_tokenizer,
    next_speaker,
    target_line,
    tokens_before_message,
)

from rp_context.pipeline import build_prompt, load_setup

TARGET_PERCENT = 7.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="600 messages instead of 2,400")
    ap.add_argument("--n-ctx", type=int, default=8192)
    ap.add_argument("--reserve", type=int, default=300)
    ap.add_argument("--model", default=None)
    args = ap.parse_args()
    n = 600 if args.quick else 2400
    model, tok = model_and_tokenizer(args.model)
    cast = group_cast()
    chat = make_chat(n, cast.names, seed=6, narrator_every=9)
    speaker = next_speaker(chat, n, cast.names)
    print(f"overhead: {n} messages, {len(cast.names)} characters + {USER}, window {args.n_ctx}, tokenizer {model.name}")
    results = {}
    history_results = {}
    by_id = {m.id: m for m in chat.messages}
    for label, policy, update in (
        ("plain ChatML (lossless)", "lossless", {}),
        ("batching + consolidation", "cache-stable", {"stripping": False}),
        ("cache-stable (default)", "cache-stable", {}),
    ):
        setup = load_setup(budget=policy)
        setup.budget = setup.budget.model_copy(update=update)
        f = build_prompt(cast, chat, setup, tok, n_ctx=args.n_ctx, reserve=args.reserve, speaker=speaker)
        r = f.report
        results[label] = r.structure_percent
        # history alone, counted independently: the exact tokens between the first kept message
        # and the tail, minus each kept message's own text counted alone
        kept = [m for m in dict.fromkeys(s.message_id for s in f.segments if s.message_id)]
        hist = history_end_tokens(f, tok) - tokens_before_message(f, tok, kept[0])
        content = sum(tok.count(by_id[mid].text) for mid in kept)
        history_results[label] = 100.0 * (hist - content) / hist
        print(f"  {label:26s} {r.structure_percent:5.2f}% structure ({r.structure_tokens} of {r.tokens} tokens, "
              f"{r.tokenizer}); {len(r.dropped)} evicted, {len(r.batched)} batched, "
              f"{len(r.consolidated)} consolidated; reductions {', '.join(r.reductions) or 'none'}")
        print(f"  {'':26s} history alone: {history_results[label]:5.2f}% structure ({hist - content} of {hist} "
              f"tokens, {len(kept)} messages)")
    ours = results["batching + consolidation"]
    plain = results["plain ChatML (lossless)"]
    print(target_line("structure with batching and consolidation, whole prompt",
                      f"{ours:.2f}% (plain ChatML {plain:.2f}%)", f"<= {TARGET_PERCENT:.0f}%", ours <= TARGET_PERCENT))
    h_ours, h_plain = history_results["batching + consolidation"], history_results["plain ChatML (lossless)"]
    print(target_line("structure with batching and consolidation, history alone",
                      f"{h_ours:.2f}% (plain ChatML {h_plain:.2f}%)", f"<= {TARGET_PERCENT:.0f}%",
                      h_ours <= TARGET_PERCENT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
