"""Benchmark: loading the exact tokenizer (llama.cpp, vocabulary only) against loading the model.

The budget manager counts with the model's own tokenizer; `LlamaTokenizer` loads only the GGUF's
vocabulary. The baseline, measured in the same run on the same file, is a full llama.cpp load
(weights and a small context), which is what counting would cost without `vocab_only`.

Run: python bench/bench_tokenizer_load.py [--quick]. Prints medians and PASS/MISS per target:
vocabulary-only load <= 0.5 s (DESIGN says ~0.1 s), and >= 2x faster than the full load.
"""

from __future__ import annotations

import argparse
import sys

from _common import median, target_line, timed_cpu

from rp_context._llama import load_llama
from rp_context.models import resolve_model
from rp_context.tokens import LlamaTokenizer

TARGET_S = 0.5
TARGET_RATIO = 2.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 loads each instead of 9")
    ap.add_argument("--model", default=None, help="GGUF file (default: the default model)")
    args = ap.parse_args()
    path = resolve_model(args.model)
    n = 3 if args.quick else 9
    vocab, full = [], []
    for _ in range(n):  # interleaved, so a busy moment hits both alike
        tok, wall, _cpu = timed_cpu(lambda: LlamaTokenizer(path))
        assert tok.count("Hello") > 0
        vocab.append(wall)
        llm, wall, _cpu = timed_cpu(lambda: load_llama(path, n_ctx=256))
        full.append(wall)
        llm.close()
    v, f = median(vocab), median(full)
    print(f"{path.name}: {n} loads each, medians")
    print(f"  vocabulary only: {v * 1000:.0f} ms   full model: {f * 1000:.0f} ms   ratio {f / v:.1f}x")
    ok_time = v <= TARGET_S
    ok_ratio = f / v >= TARGET_RATIO
    print(target_line("vocabulary-only load", f"{v:.3f} s", f"<= {TARGET_S} s", ok_time))
    print(target_line("faster than a full load", f"{f / v:.1f}x", f">= {TARGET_RATIO:.0f}x", ok_ratio))
    return 0 if ok_time and ok_ratio else 1


if __name__ == "__main__":
    sys.exit(main())
