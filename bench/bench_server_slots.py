"""Benchmark: many chats taking turns on a 2-slot llama.cpp server, with and without the slot pool.

8 one-on-one chats (synthetic, fixed seeds, ~600 tokens each to start) take turns round-robin
on llama.cpp's server from `xllamacpp` on 127.0.0.1 (`--parallel 2`, `--slot-save-path`, and no
host-RAM prompt cache, so slots are the only cache), 10 turns each:

  pool      each chat is a `RemoteBackend.for_chat(...)`: it keeps its slot while active; a chat
            that loses its slot is saved to the server's disk and restored when it returns;
  baseline  `id_slot=-1` (the server picks a slot) and no save/restore.

"New" tokens of a turn are those past the chat's previous prompt (the reply as re-rendered, the
user's message, the generation header). The first turn of each chat starts cold in both runs
and is printed apart. Run: python bench/bench_server_slots.py [--quick]. Targets: with the pool
mean evaluated <= 2x new tokens, and at least 5x fewer evaluated tokens than the baseline.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from _common import USER, make_chat, model_and_tokenizer, prefix_chat, solo_cast, target_line

from rp_context.backends.llamaserver import LlamaServer
from rp_context.backends.remote import RemoteBackend
from rp_context.backends.slots import SlotPool
from rp_context.chat import Chat, ChatMessage
from rp_context.pipeline import build_prompt, load_setup
from rp_context.tokens import common_prefix

TARGET_OVER_NEW = 2.0
TARGET_VS_BASELINE = 5.0


def start_chats(n_chats: int, tokens: int, n_ctx: int, tok: object) -> list[tuple[Chat, list[str]]]:
    """`n_chats` chats of about `tokens` prompt tokens each, and their users' next lines."""
    cast, setup = solo_cast(), load_setup()
    out = []
    for c in range(n_chats):
        pool = make_chat(120, cast.names, seed=100 + c)
        n = 4
        while n + 2 < len(pool.messages):
            f = build_prompt(cast, prefix_chat(pool, n), setup, tok, n_ctx=n_ctx, reserve=64)  # type: ignore[arg-type]
            if len(f.ids) >= tokens:
                break
            n += 2
        lines = [m.text for m in pool.messages[n:] if m.role == "user"]
        out.append((Chat(header=pool.header, messages=list(pool.messages[:n])), lines))
    return out


def run(label: str, url: str, args: argparse.Namespace, tok: object, pooled: bool) -> list[dict]:
    cast, setup = solo_cast(), load_setup()
    name = cast.names[0]
    sampler = setup.sampler.model_copy(update={"temperature": 0.0, "top_k": 1, "seed": 1,
                                               "max_tokens": args.max_tokens})
    chats = start_chats(args.chats, args.tokens, args.n_ctx // 2, tok)
    shared = RemoteBackend(url)
    pool = SlotPool(shared, shared.total_slots) if pooled else None
    backends = []
    for k in range(args.chats):
        b = shared.for_chat(f"bench-chat-{k}") if pooled else shared
        if pooled:
            b._pool = pool
        backends.append(b)
    previous: list[list[int]] = [[] for _ in chats]
    rows: list[dict] = []
    for turn in range(args.turns):
        for k, (chat, lines) in enumerate(chats):
            chat.messages.append(ChatMessage(id=str(len(chat.messages)), name=USER, role="user",
                                             text=lines[turn % len(lines)]))
            fitted = build_prompt(cast, chat, setup, tok, n_ctx=args.n_ctx // 2, reserve=64)  # type: ignore[arg-type]
            res = backends[k].stream(fitted, sampler=sampler, stop=fitted.stop).collect()
            m = res.metrics
            new = len(fitted.ids) - common_prefix(fitted.ids, previous[k]) if previous[k] else len(fitted.ids)
            previous[k] = list(fitted.ids)
            chat.messages.append(ChatMessage(id=str(len(chat.messages)), name=name, role="assistant",
                                             text=res.text.strip() or "..."))
            rows.append({"turn": turn, "chat": k, "evaluated": m.evaluated_tokens or 0, "new": new,
                         "prompt": len(fitted.ids), "ttft": m.time_to_first_token_s or 0.0})
            if args.verbose:
                print(f"    {label} turn {turn} chat {k}: prompt {len(fitted.ids)} evaluated "
                      f"{m.evaluated_tokens} new {new} restored {m.restored_tokens} TTFT "
                      f"{m.time_to_first_token_s or 0:.3f}s", flush=True)
    if pool is not None:
        print(f"  {label}: {pool.saves} slot saves, {pool.restores} restores", flush=True)
    shared.close()
    return rows


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def summary(label: str, rows: list[dict]) -> tuple[float, float, float]:
    warm = [r for r in rows if r["turn"] > 0]
    cold = [r for r in rows if r["turn"] == 0]
    ev, new, ttft = mean([r["evaluated"] for r in warm]), mean([r["new"] for r in warm]), mean(
        [r["ttft"] for r in warm])
    print(f"  {label:9s} warm turns: mean evaluated {ev:.0f}, mean new {new:.0f}, mean prompt "
          f"{mean([r['prompt'] for r in warm]):.0f}, mean TTFT {ttft:.3f} s; first turns (cold): mean "
          f"evaluated {mean([r['evaluated'] for r in cold]):.0f}", flush=True)
    return ev, new, ttft


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 chats x 3 turns instead of 8 x 10")
    ap.add_argument("--chats", type=int, default=None)
    ap.add_argument("--turns", type=int, default=None)
    ap.add_argument("--tokens", type=int, default=600, help="each chat's starting prompt size")
    ap.add_argument("--n-ctx", type=int, default=4096, help="server cache (two slots share it)")
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--model", default=None)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    args.chats = args.chats or (3 if args.quick else 8)
    args.turns = args.turns or (3 if args.quick else 10)
    if args.quick and args.tokens == 600:
        args.tokens = 400
    model, tok = model_and_tokenizer(args.model)
    print(f"server slots: {model.name}, {args.chats} chats x {args.turns} turns on 2 slots of "
          f"{args.n_ctx // 2} tokens, chats start at ~{args.tokens} tokens, replies <= "
          f"{args.max_tokens} tokens (greedy)", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        with LlamaServer(model=model, n_ctx=args.n_ctx, n_parallel=2, slot_save_path=Path(tmp) / "slots",
                         log=Path(tmp) / "server.log") as srv:
            pool_rows = run("pool", srv.url, args, tok, pooled=True)
        with LlamaServer(model=model, n_ctx=args.n_ctx, n_parallel=2, log=Path(tmp) / "server2.log") as srv:
            base_rows = run("baseline", srv.url, args, tok, pooled=False)
    ev_p, new_p, ttft_p = summary("pool", pool_rows)
    ev_b, _, ttft_b = summary("baseline", base_rows)
    ratio = ev_b / ev_p if ev_p else float("inf")
    over = ev_p / new_p if new_p else float("inf")
    print(f"  mean TTFT: pool {ttft_p:.3f} s, baseline {ttft_b:.3f} s "
          f"({ttft_b / ttft_p if ttft_p else float('inf'):.1f}x)")
    ok1 = over <= TARGET_OVER_NEW
    ok2 = ratio >= TARGET_VS_BASELINE
    print(target_line("pool: mean evaluated vs mean new tokens", f"{over:.2f}x ({ev_p:.0f} vs {new_p:.0f})",
                      f"<= {TARGET_OVER_NEW:.0f}x", ok1))
    print(target_line("pool vs baseline: evaluated tokens", f"{ratio:.1f}x fewer ({ev_p:.0f} vs {ev_b:.0f})",
                      f">= {TARGET_VS_BASELINE:.0f}x", ok2))
    return 0 if ok1 and ok2 else 1


if __name__ == "__main__":
    sys.exit(main())
