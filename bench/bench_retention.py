"""Benchmark: how much of the story a long chat keeps, and what keeping it costs the KV cache.

300 simulated turns (the user's message and a reply each turn) at 2k and 8k windows, one-on-one
and the five-character group, with three policies side by side in the same run: SillyTavern's
per-message trimming (`sillytavern`, the baseline), chunked eviction (`cache-stable`) and the new
default (`full-window`: per-turn eviction with a context shift, memory on). No model generates:
replies come from the synthetic chat, prompts are built by `build_prompt` and compared as
llama.cpp compares them. Per turn:

- fill: prompt tokens / budget, from the first eviction on (before it the whole chat fits);
- re-evaluated: tokens the llama backend would evaluate, from a model of its cache (`SimCache`:
  the token ids it holds). Without shift it keeps the common prefix with the previous request;
  with shift (full-window) it keeps what `backends.shift.plan_reuse` plans, the same plan the
  llama backend carries out: the prefix, then cached runs moved to their new places, with new
  text between them (a changed memory, a moved injection) evaluated in place. Split three ways:
  `gaps` (new text between kept runs), `after` (from the last kept run to the end: the new turn
  and the volatile tail), and `summary` (the summary requests' own prompts, below);
- new: tokens from the previous reply to the end (the least any cache could evaluate);
- memory: after each reply, when `memory_due` says so, the summary request (the prompt up to its
  tail plus the instruction, SillyTavern's classic mode) goes through the same cache, and a
  summary is stored the way the session stores it (a stand-in text of the policy's length;
  `--summaries N` has the real model write the first N of each full-window run at the windows
  of `--summary-windows` and times them per write, i.e. per eviction that needed one, with the
  prompt cached first as the reply left it); covered: evicted messages the
  memory shown covers; a memory miss is a turn whose memory changed while its history's front
  did not (an extra cache miss caused by the memory).

Run: python bench/bench_retention.py [--quick] [--turns N] [--estimate] [--summaries N] [--verbose]
[--plot FILE.png]. Targets for
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
    stand_in_summary,
    target_line,
    tokens_before_message,
)

from rp_context.backends.shift import MIN_CHUNK, plan_reuse
from rp_context.budget import common_prefix
from rp_context.errors import BudgetError
from rp_context.memory import memory_due, store_memory, stored_memories, summary_request
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
    summary_tokens: list[tuple[int, int]] = field(default_factory=list)
    """Per real summary: (request tokens evaluated, summary tokens generated)."""
    gaps: int = 0
    """Re-evaluated tokens between kept runs (a changed memory, a moved injection)."""
    after: int = 0
    """Re-evaluated tokens from the last kept run (or the prefix) to the end."""
    summary: int = 0
    """Tokens the summary requests evaluated (their instruction and header)."""


@dataclass
class SimCache:
    """The llama backend's KV cache as the token ids it holds, kept as the backend keeps it."""

    ids: list[int] = field(default_factory=list)

    def request(self, prompt: list[int], shift: bool) -> tuple[int, int]:
        """Evaluate `prompt` as the backend would: (tokens evaluated, of which in gaps)."""
        if shift:
            plan = plan_reuse(self.ids, prompt, min_chunk=MIN_CHUNK)
            evaluated, gaps = plan.evaluated(len(prompt)), sum(b - a for a, b in plan.gaps)
        else:
            evaluated, gaps = len(prompt) - min(common_prefix(self.ids, prompt), len(prompt) - 1), 0
        self.ids = list(prompt)
        return evaluated, gaps


def _counter(args: argparse.Namespace) -> Any:
    from rp_context.tokens import LlamaTokenizer, TiktokenCounter

    if args.estimate:
        return TiktokenCounter()
    from rp_context.models import resolve_model

    return LlamaTokenizer(resolve_model(args.model))


def simulate(policy_name: str, group: bool, n_ctx: int, turns: int, tok: Any,
             args: argparse.Namespace, backend: Any = None) -> Run:
    cast = group_cast() if group else solo_cast()
    setup = load_setup(budget=policy_name)
    policy = setup.budget
    chat = make_chat(2 + 2 * turns, cast.names, seed=11, narrator_every=9 if group else 0)
    run = Run()
    prev = None
    cache = SimCache()
    shift = policy.eviction == "shift"
    for k in range(turns + 1):
        n = 2 + 2 * k
        now = prefix_chat(chat, n)
        fitted = build_prompt(cast, now, setup, tok, n_ctx=n_ctx, reserve=args.reserve,
                              speaker=next_speaker(chat, n, cast.names),
                              previous_ids=prev.ids if prev else None)
        r = fitted.report
        assert len(fitted.ids) <= r.budget
        evaluated, gaps = cache.request(fitted.ids, shift)
        if prev is not None:
            run.reeval.append(evaluated)
            run.gaps += gaps
            run.after += evaluated - gaps
            if args.verbose:
                print(f"      {policy_name} turn {k:3d}: prompt {len(fitted.ids):5d} evaluated "
                      f"{evaluated:5d} (gaps {gaps:4d}) evicted {r.turns_evicted:3d} memory "
                      f"{(r.memory or {}).get('message_id')}")
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
            req = summary_request(fitted, policy, tok)
            extra, _ = cache.request(req.ids, False)  # summarize() sends it without a shift
            if prev is not None:
                run.reeval[-1] += extra
                run.summary += extra
            if backend is not None and len(run.summary_seconds) < args.summaries:
                text = _real_summary(backend, fitted, tok, setup, run)
            else:
                text = stand_in_summary(policy.memory_length, n)
            store_memory(chat, text, covers=req.covers, front=r.front)
            run.memory_writes += 1
        prev = fitted
    return run


def _real_summary(backend: Any, fitted: Any, tok: Any, setup: Any, run: Run) -> str:
    """The model writes the summary as the session does after a reply: the prompt is cached
    first (with shift, as the reply left it; not timed), then `summarize` is timed."""
    from rp_context.memory import summarize

    one = setup.sampler.model_copy(update={"max_tokens": 1})
    backend.stream(fitted.ids, sampler=one, context_shift=True).collect()
    t = time.perf_counter()
    text, _ = summarize(backend, fitted, tok, setup.budget, setup.sampler)
    run.summary_seconds.append(time.perf_counter() - t)
    m = backend.last_result.metrics
    run.summary_tokens.append((m.evaluated_tokens or 0, m.generated_tokens))
    return text or stand_in_summary(setup.budget.memory_length, 0)


def _row(name: str, run: Run) -> str:
    ratio = mean(run.reeval) / mean(run.new)
    cov = f"{100 * mean(run.covered):5.1f}%" if run.covered else "  n/a "
    fill = f"{100 * mean(run.fill):5.1f}%" if run.fill else "  n/a "
    n = len(run.reeval)
    return (f"    {name:13s} fill {fill}  re-evaluated {mean(run.reeval):7.1f} vs "
            f"new {mean(run.new):6.1f} = {ratio:4.2f}x  covered {cov}  memory writes "
            f"{run.memory_writes:3d}, extra misses {run.memory_misses}\n"
            f"    {'':13s} re-evaluated per turn: {run.after / n:6.1f} after the kept text, "
            f"{run.gaps / n:5.1f} in gaps between kept runs, {run.summary / n:5.1f} in summary "
            f"requests")


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


def _backend(args: argparse.Namespace, n_ctx: int) -> Any:
    from rp_context.backends.llama import LlamaBackend
    from rp_context.models import resolve_model

    threads = {"n_threads": args.threads, "n_threads_batch": args.threads} if args.threads else {}
    return LlamaBackend(resolve_model(args.model), n_ctx=n_ctx, **threads)


def _summary_line(run: Run) -> str:
    """Time per summary written by the model (one per eviction that needed one)."""
    secs = sorted(run.summary_seconds)
    asked = sorted(a for a, _ in run.summary_tokens)
    made = sorted(g for _, g in run.summary_tokens)
    mid = len(secs) // 2
    return (f"    summary time per write (model, {len(secs)} of {run.memory_writes} writes): median "
            f"{secs[mid]:.2f} s, max {secs[-1]:.2f} s; the request evaluated a median "
            f"{asked[mid]} tokens and generated {made[mid]}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="60 turns instead of 300")
    ap.add_argument("--turns", type=int, default=None)
    ap.add_argument("--reserve", type=int, default=256)
    ap.add_argument("--model", default=None, help="GGUF model (default: the default model)")
    ap.add_argument("--estimate", action="store_true", help="count with tiktoken (no model needed)")
    ap.add_argument("--summaries", type=int, default=0, metavar="N",
                    help="the model writes the first N summaries of each full-window run (timed)")
    ap.add_argument("--summary-windows", default="2048",
                    help="windows whose full-window runs get real summaries (comma-separated)")
    ap.add_argument("--threads", type=int, default=None, help="llama.cpp threads for --summaries")
    ap.add_argument("--verbose", action="store_true", help="one line per turn")
    ap.add_argument("--plot", default=None, help="PNG path (default: bench_retention.png next to this script)")
    args = ap.parse_args()
    turns = args.turns or (60 if args.quick else 300)
    windows = (2048, 8192)
    tok = _counter(args)
    timed_windows = {int(w) for w in args.summary_windows.split(",")} if args.summaries else set()
    print(f"retention: {turns} turns with {USER}, tokenizer {tok.name}, reserve {args.reserve}")
    series: dict[str, dict[str, Run]] = {}
    ok = True
    for n_ctx in windows:
        for group in (False, True):
            setting = f"{n_ctx} {'five-character group' if group else 'one-on-one'}"
            print(f"  {setting}:")
            try:
                backend = _backend(args, n_ctx) if n_ctx in timed_windows else None
                runs = {p: simulate(p, group, n_ctx, turns, tok, args,
                                    backend if p == "full-window" else None) for p in POLICIES}
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
                print(_summary_line(new))
    out = Path(args.plot) if args.plot else Path(__file__).with_name("bench_retention.png")
    _plot(out, series)
    print(f"  plot: {out}")
    print("PASS" if ok else "FAIL")
    return 0


if __name__ == "__main__":
    sys.exit(main())
