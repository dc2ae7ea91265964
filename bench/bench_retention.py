"""Benchmark: how much of the story a long chat keeps, and what keeping it costs the KV cache.

300 simulated turns (the user's message and a reply each turn) at 2k and 8k windows, one-on-one
and the five-character group, with three policies side by side in the same run: SillyTavern's
per-message trimming (`sillytavern`, the baseline), chunked eviction (`cache-stable`) and the new
default (`full-window`: per-turn eviction with a context shift, memory on). No model generates:
replies come from the synthetic chat, prompts are built by `build_prompt` and compared as
llama.cpp compares them. Per turn:

- fill: prompt tokens / budget, from the first eviction on (before it the whole chat fits);
- re-evaluated: tokens after what the cache can keep, i.e. the common prefix with the previous
  prompt, or with a context shift (full-window) the prefix plus the tail kept after cutting the
  evicted span (`backends.shift.plan_shift`, what the llama backend does);
- new: tokens from the previous reply to the end (the least any cache could evaluate);
- memory: after each reply, when `memory_due` says so, a summary is stored the way the session
  stores it (a stand-in text of the policy's length; `--model` times the real summary instead);
  covered: evicted messages the memory shown covers; a memory miss is a turn whose memory changed
  while its history's front did not (an extra cache miss caused by the memory).

Run: python bench/bench_retention.py [--quick] [--estimate] [--plot FILE.png]. Targets for
full-window: fill >= 95% of the budget, re-evaluated <= 1.5x new tokens (memory updates
included), 100% of evicted turns covered by memory; for cache-stable, memory adds 0 misses.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean
from typing import Any

from _common import (
    USER,
    group_cast,
    make_chat,
    next_speaker,
    prefix_chat,
    solo_cast,
    target_line,
    tokens_before_message,
)

from rp_context.backends.shift import plan_shift
from rp_context.budget import common_prefix
from rp_context.errors import BudgetError
from rp_context.memory import memory_due, store_memory, stored_memories
from rp_context.pipeline import build_prompt, load_setup

POLICIES = ("sillytavern", "cache-stable", "full-window")
TARGET_FILL = 0.95
TARGET_REEVAL = 1.5


@dataclass
class Run:
    fill: list[float] = field(default_factory=list)
    """From the first eviction on (before it the whole chat fits, whatever the policy)."""
    fill_all: list[float] = field(default_factory=list)
    reeval: list[int] = field(default_factory=list)
    new: list[int] = field(default_factory=list)
    covered: list[float] = field(default_factory=list)
    memory_misses: int = 0
    memory_writes: int = 0
    summary_seconds: list[float] = field(default_factory=list)


def _counter(args: argparse.Namespace) -> Any:
    from rp_context.tokens import LlamaTokenizer, TiktokenCounter

    if args.estimate:
        return TiktokenCounter()
    from rp_context.models import resolve_model

    return LlamaTokenizer(resolve_model(args.model))


def _stand_in(policy: Any, upto: int) -> str:
    """A summary-sized text (the policy's length in words, ~1.3 tokens each) naming its span."""
    words = max(8, policy.memory_length * 3 // 4)
    return f"Events up to message {upto}: " + " ".join(["the keeper tends the lamp"] * (words // 5))


def simulate(policy_name: str, group: bool, n_ctx: int, turns: int, tok: Any,
             args: argparse.Namespace, backend: Any = None) -> Run:
    cast = group_cast() if group else solo_cast()
    setup = load_setup(budget=policy_name)
    policy = setup.budget
    chat = make_chat(2 + 2 * turns, cast.names, seed=11, narrator_every=9 if group else 0)
    run = Run()
    prev = None
    for k in range(turns + 1):
        n = 2 + 2 * k
        now = prefix_chat(chat, n)
        fitted = build_prompt(cast, now, setup, tok, n_ctx=n_ctx, reserve=args.reserve,
                              speaker=next_speaker(chat, n, cast.names),
                              previous_ids=prev.ids if prev else None)
        r = fitted.report
        assert len(fitted.ids) <= r.budget
        if prev is not None:
            reused = common_prefix(prev.ids, fitted.ids)
            if policy.eviction == "shift":
                plan = plan_shift(prev.ids, fitted.ids)
                if plan is not None:
                    reused = max(reused, plan.start + plan.kept)
            run.reeval.append(len(fitted.ids) - reused)
            run.new.append(len(fitted.ids) - tokens_before_message(fitted, tok, chat.messages[n - 2].id))
            run.fill_all.append(r.tokens / r.budget)
            if r.turns_evicted or run.fill:  # the window is full from the first eviction on
                run.fill.append(r.tokens / r.budget)
            if r.turns_evicted:
                run.covered.append(r.turns_covered / r.turns_evicted)
            if (r.memory or {}).get("message_id") != (prev.report.memory or {}).get("message_id") \
                    and r.front == prev.report.front:
                run.memory_misses += 1
        # after the reply: the session writes a summary when it is due
        mems = stored_memories(now.messages)
        if memory_due(fitted, mems, policy, len(now.messages)):
            if backend is not None:
                from rp_context.memory import summarize

                t = time.perf_counter()
                text = summarize(backend, fitted, tok, policy, setup.sampler)
                run.summary_seconds.append(time.perf_counter() - t)
            else:
                text = _stand_in(policy, n)
            store_memory(chat, text, covers=now.messages[-1].id, front=r.front)
            run.memory_writes += 1
        prev = fitted
    return run


def _row(name: str, run: Run) -> str:
    ratio = mean(run.reeval) / mean(run.new)
    cov = f"{100 * mean(run.covered):5.1f}%" if run.covered else "  n/a "
    fill = f"{100 * mean(run.fill):5.1f}%" if run.fill else "  n/a "
    return (f"    {name:13s} fill {fill}  re-evaluated {mean(run.reeval):7.1f} vs "
            f"new {mean(run.new):6.1f} = {ratio:4.2f}x  covered {cov}  memory writes "
            f"{run.memory_writes:3d}, extra misses {run.memory_misses}")


def _plot(path: Path, series: dict[str, dict[str, Run]]) -> None:
    """Fill and re-evaluated tokens per turn for each policy (one panel per setting)."""
    from PIL import Image, ImageDraw

    colors = {"sillytavern": (200, 80, 60), "cache-stable": (60, 120, 200), "full-window": (40, 160, 90)}
    w, h, pad = 900, 220, 30
    img = Image.new("RGB", (w, h * 2 * len(series)), "white")
    d = ImageDraw.Draw(img)
    for i, (setting, runs) in enumerate(series.items()):
        for j, metric in enumerate(("fill", "reeval")):
            top = (2 * i + j) * h
            d.text((pad, top + 4), f"{setting}: {'window fill' if metric == 'fill' else 're-evaluated tokens'}",
                   fill="black")
            values = {p: getattr(r, "fill_all" if metric == "fill" else metric) for p, r in runs.items()}
            peak = max((max(v) for v in values.values() if v), default=1) or 1
            for p, v in values.items():
                pts = [(pad + x * (w - 2 * pad) / max(1, len(v) - 1),
                        top + h - pad - y / peak * (h - 2 * pad)) for x, y in enumerate(v)]
                if len(pts) > 1:
                    d.line(pts, fill=colors[p], width=1)
            for k, p in enumerate(values):
                d.text((w - 160, top + 4 + 12 * k), p, fill=colors[p])
    img.save(path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="60 turns instead of 300")
    ap.add_argument("--turns", type=int, default=None)
    ap.add_argument("--reserve", type=int, default=256)
    ap.add_argument("--model", default=None, help="GGUF model (default: the default model)")
    ap.add_argument("--estimate", action="store_true", help="count with tiktoken (no model needed)")
    ap.add_argument("--summaries", action="store_true",
                    help="write real summaries with the model (times them per eviction)")
    ap.add_argument("--plot", default=None, help="PNG path (default: bench_retention.png next to this script)")
    args = ap.parse_args()
    turns = args.turns or (60 if args.quick else 300)
    windows = (2048, 8192)
    tok = _counter(args)
    backend = None
    if args.summaries:
        from rp_context.backends.llama import LlamaBackend
        from rp_context.models import resolve_model

        backend = LlamaBackend(resolve_model(args.model), n_ctx=max(windows))
    print(f"retention: {turns} turns with {USER}, tokenizer {tok.name}, reserve {args.reserve}")
    series: dict[str, dict[str, Run]] = {}
    ok = True
    for n_ctx in windows:
        for group in (False, True):
            setting = f"{n_ctx} {'five-character group' if group else 'one-on-one'}"
            print(f"  {setting}:")
            try:
                runs = {p: simulate(p, group, n_ctx, turns, tok, args, backend) for p in POLICIES}
            except BudgetError as exc:
                print(f"    skipped: {exc}")
                continue
            series[setting] = runs
            for p, run in runs.items():
                print(_row(p, run))
            new, chunked, st = runs["full-window"], runs["cache-stable"], runs["sillytavern"]
            fill = mean(new.fill) if new.fill else 1.0
            ratio = mean(new.reeval) / mean(new.new)
            cov = mean(new.covered) if new.covered else 1.0
            checks = [
                ("full-window mean fill", f"{100 * fill:.1f}% (sillytavern {100 * mean(st.fill or [1.0]):.1f}%)",
                 f">= {100 * TARGET_FILL:.0f}%", fill >= TARGET_FILL),
                ("full-window re-evaluated / new", f"{ratio:.2f}x (sillytavern "
                 f"{mean(st.reeval) / mean(st.new):.2f}x)", f"<= {TARGET_REEVAL}x", ratio <= TARGET_REEVAL),
                ("full-window evicted turns covered by memory", f"{100 * cov:.1f}%", "100%", cov >= 0.999),
                ("cache-stable extra misses from memory", str(chunked.memory_misses), "0",
                 chunked.memory_misses == 0),
            ]
            for label, measured, target, good in checks:
                print(target_line(label, measured, target, good))
                ok = ok and good
            if new.summary_seconds:
                print(f"    summary time per write (model): median {sorted(new.summary_seconds)[len(new.summary_seconds) // 2]:.2f} s")
    out = Path(args.plot) if args.plot else Path(__file__).with_name("bench_retention.png")
    _plot(out, series)
    print(f"  plot: {out}")
    print("PASS" if ok else "FAIL")
    return 0


if __name__ == "__main__":
    sys.exit(main())
