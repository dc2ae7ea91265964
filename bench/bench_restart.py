"""Benchmark: the first turn after a restart, with and without the chat's saved KV state.

A one-on-one chat of about 2,000 tokens (synthetic, fixed seed) continued by `rp-context
generate --chat` processes, so every turn is a new process:

  in process   turn 1 reads the chat and saves its state beside it; turn 2, a new process,
               restores the state (`.kvstate/`) and reads only the new tokens. The baseline is
               the same turn 2 on a copy of the chat without its state (`--no-kv-state`).
  llama.cpp's  the same through `--server` against llama.cpp's server (`xllamacpp`), and the
  server       server itself is restarted between the turns, so its caches are empty; the
               chat's slot file on the server's disk is restored. Baseline: `--no-kv-state`.

Time to first token counts the restore (read at open) plus the backend's time to first token.
Run: python bench/bench_restart.py [--quick]. Target: after a restart only the new tokens are
evaluated, and the first token comes at least 5x sooner than without the saved state.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import REPO, make_chat, median, model_and_tokenizer, solo_cast, target_line

from rp_context.chat import save_chat
from rp_context.pipeline import build_prompt, load_setup

TARGET_RATIO = 5.0
CARD = REPO / "cards" / "wren-halloway.json"
PERSONA = REPO / "cards" / "sam-ashdown.persona.yaml"


def chat_of(tokens: int, n_ctx: int, tok: object, seed: int) -> object:
    """A synthetic chat whose prompt is about `tokens` long."""
    cast = solo_cast()
    pool = make_chat(200, cast.names, seed=seed)
    setup = load_setup()
    n = 4
    while n < len(pool.messages):
        chat = type(pool)(header=pool.header, messages=pool.messages[:n])
        fitted = build_prompt(cast, chat, setup, tok, n_ctx=n_ctx, reserve=64)  # type: ignore[arg-type]
        if len(fitted.ids) >= tokens:
            return chat
        n += 2
    return pool


def generate(chat: Path, message: str, args: argparse.Namespace, *extra: str) -> dict:
    cmd = [sys.executable, "-m", "rp_context", "generate", "--card", str(CARD), "--persona",
           str(PERSONA), "--chat", str(chat), "--message", message, "--json", "--max-tokens",
           str(args.max_tokens), "--temperature", "0", "--seed", "1", "--context", str(args.n_ctx),
           "--reserve", "64", *extra]
    if args.model:
        cmd += ["--model", args.model]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if proc.returncode != 0:
        raise SystemExit(f"generate failed: {proc.stderr.strip()[-400:]}")
    return json.loads(proc.stdout)


def first_turn_after_restart(chat: Path, args: argparse.Namespace, restart: object, *extra: str
                             ) -> tuple[dict, dict, dict]:
    """Turn 1 (saves the state), a restart, then turn 2 with the state and on a stateless copy."""
    first = generate(chat, "Morning. Is the lamp still lit?", args, *extra)
    bare = chat.with_name("bare-" + chat.name)
    shutil.copy(chat, bare)
    restart()  # type: ignore[operator]
    warm = generate(chat, "Good. What do we do today?", args, *extra)
    restart()  # type: ignore[operator]
    cold = generate(bare, "Good. What do we do today?", args, *extra, "--no-kv-state")
    return first, warm, cold


def row(out: dict) -> dict[str, float]:
    m = out["metrics"]
    restore = out.get("kv_state", {}).get("restore_s", 0.0)
    return {"ttft": (m["time_to_first_token_s"] or 0.0) + restore, "restore": restore,
            "evaluated": m["evaluated_tokens"] or 0, "prompt": m["prompt_tokens"] or 0,
            "restored": out.get("kv_state", {}).get("restored_tokens", 0)}


def report(label: str, pairs: list[tuple[dict, dict]], new_tokens: list[int]) -> bool:
    warm = [row(w) for w, _ in pairs]
    cold = [row(c) for _, c in pairs]
    tw, tc = median([r["ttft"] for r in warm]), median([r["ttft"] for r in cold])
    ratio = tc / tw if tw else float("inf")
    print(f"  {label}: with state: TTFT {tw:.3f} s (restore {median([r['restore'] for r in warm]):.3f} s),"
          f" evaluated {median([r['evaluated'] for r in warm]):.0f} of {median([r['prompt'] for r in warm]):.0f}"
          f" (restored {median([r['restored'] for r in warm]):.0f});"
          f" without: TTFT {tc:.3f} s, evaluated {median([r['evaluated'] for r in cold]):.0f}", flush=True)
    only_new = all(r["evaluated"] <= n for r, n in zip(warm, new_tokens, strict=True))
    print(target_line(f"{label}: evaluated only the new tokens",
                      ", ".join(f"{r['evaluated']} <= {n}" for r, n in zip(warm, new_tokens, strict=True)),
                      "every restart", only_new))
    print(target_line(f"{label}: TTFT vs no saved state", f"{ratio:.1f}x sooner ({tw:.3f} s vs {tc:.3f} s)",
                      f">= {TARGET_RATIO:.0f}x", ratio >= TARGET_RATIO))
    return only_new and ratio >= TARGET_RATIO


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one restart per backend instead of three")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--tokens", type=int, default=2000, help="chat size in prompt tokens")
    ap.add_argument("--n-ctx", type=int, default=4096)
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--model", default=None)
    ap.add_argument("--no-server", action="store_true", help="skip llama.cpp's server")
    args = ap.parse_args()
    rounds = args.rounds or (1 if args.quick else 3)
    model, tok = model_and_tokenizer(args.model)
    print(f"restart: {model.name}, chat of ~{args.tokens} tokens, window {args.n_ctx}, {rounds} restart(s)"
          f" per backend, replies <= {args.max_tokens} tokens (greedy)", flush=True)
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        arms: list[tuple[str, list[str], object, object]] = [("in process", [], lambda: None, None)]
        server = None
        if not args.no_server:
            from rp_context.backends.llamaserver import LlamaServer

            server = LlamaServer(model=model, n_ctx=args.n_ctx, slot_save_path=root / "slots",
                                 log=root / "server.log").start()
            arms.append(("llama.cpp server", ["--server", server.url], server.restart, server))
        try:
            for label, extra, restart, _ in arms:
                pairs, news = [], []
                for k in range(rounds):
                    chat = root / f"{label.replace(' ', '-')}-{k}.jsonl"
                    base = chat_of(args.tokens, args.n_ctx, tok, seed=40 + k)
                    save_chat(base, chat)  # type: ignore[arg-type]
                    first, warm, cold = first_turn_after_restart(chat, args, restart, *extra)
                    pairs.append((warm, cold))
                    # new: turn 2's prompt beyond turn 1's (the reply, the message, the header)
                    news.append(warm["metrics"]["prompt_tokens"] - first["metrics"]["prompt_tokens"])
                ok = report(label, pairs, news) and ok
        finally:
            if server is not None:
                server.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
