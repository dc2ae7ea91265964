"""Benchmark: time to first token and tokens evaluated per turn under three history policies.

A one-on-one chat with the default model at a 2,048-token window, starting near full, with short
replies. Until the budget manager lands, history is trimmed here by two simple stand-ins:

  (a) per-message trimming, as SillyTavern does: drop the oldest messages one by one until the
      prompt fits, so once the window is full the prompt changes right after the card every turn;
  (b) cache-stable: when over budget, drop the oldest messages down to a low-water mark, so the
      prompt prefix stays identical for many turns;
  (c) cache-stable with context shift: (b), and the backend cuts the evicted span from its cache.

Run: python bench/cache_policies.py [--turns 40]. Prints one line per policy and the targets.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rp_context.backends.base import GenerationResult  # noqa: E402
from rp_context.backends.llama import LlamaBackend  # noqa: E402
from rp_context.backends.turns import run_turns, summarize  # noqa: E402
from rp_context.models import resolve_model  # noqa: E402
from rp_context.quickstart import chatml_parts, read_simple_card  # noqa: E402
from rp_context.sampling import SamplerSettings  # noqa: E402
from rp_context.tokens import LlamaTokenizer  # noqa: E402

USER_LINES = [
    "What do you see out on the water tonight?",
    "Tell me about the lamp and how you keep it lit.",
    "Is there anything to eat in the galley?",
    "Why did the supply boat stop coming?",
    "Show me the logbook your father kept.",
    "Do you ever miss the mainland?",
    "What was that noise on the stairs?",
    "Can we climb up to the gallery?",
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--turns", type=int, default=40)
    ap.add_argument("--n-ctx", type=int, default=2048)
    ap.add_argument("--max-tokens", type=int, default=24)
    ap.add_argument("--low-water", type=float, default=0.7, help="fraction of the budget kept on eviction")
    ap.add_argument("--model", default=None)
    args = ap.parse_args()

    model = resolve_model(args.model)
    tok = LlamaTokenizer(model)
    card = read_simple_card(REPO / "cards" / "wren-halloway.json")
    budget = args.n_ctx - args.max_tokens - 8
    sampler = SamplerSettings(temperature=0.0, top_k=1, repeat_penalty=1.0, max_tokens=args.max_tokens, seed=1)
    stop = ["<|im_end|>", "\nTess:"]

    def ids_for(history: list[tuple[str, str]], message: str) -> list[int]:
        return tok.tokenize_parts(chatml_parts(card, message, user="Tess", history=history))

    # Start near full: canned exchanges until the prompt is about 95% of the budget.
    seed_history: list[tuple[str, str]] = []
    i = 0
    while len(ids_for(seed_history, "x")) < 0.95 * budget:
        seed_history += [
            ("user", USER_LINES[i % len(USER_LINES)]),
            ("assistant", f"Wren answers the {i}th question slowly, eyes on the dark water beyond the glass."),
        ]
        i += 1

    def policy(chunked: bool) -> Callable[[int, list[GenerationResult]], list[int] | None]:
        history = list(seed_history)
        start = 0  # index of the oldest kept message

        def next_prompt(turn: int, results: list[GenerationResult]) -> list[int] | None:
            nonlocal start
            if turn >= args.turns:
                return None
            if results:
                history.extend([("user", USER_LINES[(turn - 1) % len(USER_LINES)]), ("assistant", results[-1].text.strip())])
            message = USER_LINES[turn % len(USER_LINES)]
            ids = ids_for(history[start:], message)
            if len(ids) > budget:
                target = args.low_water * budget if chunked else budget
                while len(ids) > target and start < len(history) - 2:
                    start += 2  # whole exchanges; never half a turn
                    ids = ids_for(history[start:], message)
            return ids

        return next_prompt

    print(f"model {model.name}, window {args.n_ctx}, {args.turns} turns, replies <= {args.max_tokens} tokens")
    rows = {}
    for label, chunked, shift in (
        ("a per-message trimming", False, False),
        ("b cache-stable", True, False),
        ("c cache-stable + shift", True, True),
    ):
        backend = LlamaBackend(model, n_ctx=args.n_ctx, context_shift=shift)
        t = time.perf_counter()
        results = run_turns(backend, policy(chunked), sampler=sampler, stop=stop)
        wall = time.perf_counter() - t
        metrics = [r.metrics for r in results]
        s = summarize(metrics)
        rows[label] = (s, metrics)
        print(
            f"{label:26s} median TTFT {s.median_ttft_s:.3f} s  median evaluated {s.median_evaluated:.0f}"
            f"  max evaluated {s.max_evaluated}  wall {wall:.0f} s"
        )
        backend.close()
    a, b = rows["a per-message trimming"][0], rows["b cache-stable"][0]
    ratio = (a.median_ttft_s or 0) / (b.median_ttft_s or 1)
    print(f"target (b) >= 5x lower median TTFT than (a): {ratio:.1f}x {'MET' if ratio >= 5 else 'NOT MET'}")
    c_metrics = rows["c cache-stable + shift"][1]
    print(
        "(c) evaluated tokens per turn: "
        + " ".join(str(m.evaluated_tokens) for m in c_metrics)
        + f"  (shifted on {sum(1 for m in c_metrics if m.shifted_tokens)} turns)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
