"""Benchmark: time to build one turn's prompt for a long group chat, against the naive way.

A 2,400-message chat with five characters and a user, an 8,192-token window and the default
model's tokenizer. Each turn adds the user's message and a character's reply and builds the
next prompt through `build_prompt` (assemble, fit, final exact tokenization) with the default
policy (`full-window`; per-segment costs are cached across turns). The baseline, measured in the same run on the same chats, is the naive
way: render the whole history with the model's own Jinja template, tokenize it all, drop the
oldest message until it fits (subtracting each dropped message's own token count), then
tokenize the kept prompt once more for the exact count.

Run: python bench/bench_build_latency.py [--quick]. Prints medians and PASS/MISS per target:
median per turn <= 50 ms, and >= 10x faster than the naive way.
"""

from __future__ import annotations

import argparse
import sys

from _common import (
    USER,
    group_cast,
    make_chat,
    median,
    model_and_tokenizer,
    next_speaker,
    prefix_chat,
    target_line,
    timed_cpu,
)

from rp_context.pipeline import build_prompt, load_setup
from rp_context.segments import SegmentKind
from rp_context.templates.jinja import JinjaTemplate
from rp_context.templates.model import Message

TARGET_MS = 50.0
TARGET_RATIO = 10.0


def naive_prompt(jinja: JinjaTemplate, tok: object, system: str, history: list[Message], budget: int) -> list[int]:
    """Render everything, tokenize it all, drop oldest messages until the count fits."""
    msgs = [Message("system", system), *history]
    ids = tok.tokenize(jinja.render_text(msgs), special=True)  # type: ignore[attr-defined]
    total = len(ids)
    start = 0
    # a message's own tokens: its render after the system turn (alone, the template would add
    # its default system prompt)
    lead = jinja.render_text(msgs[:1], add_generation_prompt=False)
    while total > budget and start < len(history):
        one = jinja.render_text([msgs[0], history[start]], add_generation_prompt=False)[len(lead):]
        total -= len(tok.tokenize(one, special=True))  # type: ignore[attr-defined]
        start += 1
    while True:  # exact count of what is kept; drop more if the estimate was short
        ids = tok.tokenize(jinja.render_text([msgs[0], *history[start:]]), special=True)  # type: ignore[attr-defined]
        if len(ids) <= budget or start >= len(history):
            return ids
        start += 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10 turns (3 naive) instead of 50 (7 naive)")
    ap.add_argument("--messages", type=int, default=2400)
    ap.add_argument("--n-ctx", type=int, default=8192)
    ap.add_argument("--reserve", type=int, default=300, help="tokens kept free for the reply")
    ap.add_argument("--model", default=None)
    args = ap.parse_args()
    turns = 10 if args.quick else 50
    naive_turns = 3 if args.quick else 7

    model, tok = model_and_tokenizer(args.model)
    cast = group_cast()
    names = cast.names
    chat = make_chat(args.messages + 2 * turns, names, seed=6, narrator_every=9)
    setup = load_setup()
    budget = args.n_ctx - args.reserve
    print(f"build latency: {args.messages} messages, {len(names)} characters + {USER}, window {args.n_ctx}, "
          f"reserve {args.reserve}, policy {setup.budget.name}, tokenizer {model.name}")

    # ours: successive turns, each with two more messages, the previous ids for the report
    times: list[float] = []
    cpu: list[float] = []
    previous = None
    first_s = 0.0
    fitted = None
    for k in range(turns + 1):
        n = args.messages + 2 * k
        c = prefix_chat(chat, n)
        speaker = next_speaker(chat, n, names)
        fitted, s, cs = timed_cpu(lambda c=c, speaker=speaker, previous=previous: build_prompt(
            cast, c, setup, tok, n_ctx=args.n_ctx, reserve=args.reserve, speaker=speaker,
            previous_ids=previous))
        if k == 0:
            first_s = s  # cold: every segment counted once; not part of the median
        else:
            times.append(s)
            cpu.append(cs)
        assert len(fitted.ids) <= budget and fitted.report.tokens == len(fitted.ids)
        previous = fitted.ids
    assert fitted is not None
    r = fitted.report
    ours_ms = median(times) * 1000
    ours_cpu = median(cpu) * 1000
    print(f"  ours : median {ours_ms:.1f} ms/turn wall, {ours_cpu:.1f} ms CPU, over {turns} turns (wall min "
          f"{min(times) * 1000:.1f}, max {max(times) * 1000:.1f}); first turn, cold caches: {first_s * 1000:.0f} ms")
    print(f"         last prompt {r.tokens} tokens ({r.tokenizer}), {len(r.dropped)} messages evicted, "
          f"reductions {', '.join(r.reductions)}, reused prefix {r.reused_prefix}")

    # naive: the model's Jinja template over the whole history, same chats
    jinja = JinjaTemplate.from_gguf(model, tokenizer=tok)
    head = [s.text for s in fitted.assembled.segments
            if s.kind not in (SegmentKind.CHAT_MESSAGE, SegmentKind.GENERATION_HEADER, SegmentKind.STRUCTURE,
                              SegmentKind.EXAMPLE_DIALOGUE, SegmentKind.CHAT_START)
            and s.message_id is None and s.text]
    system = "\n".join(head)
    naive_times: list[float] = []
    naive_cpu: list[float] = []
    tokenize_only: list[float] = []
    naive_len = 0
    for k in range(1, naive_turns + 1):
        n = args.messages + 2 * k
        history = [Message(m.role, f"{m.name}: {m.text}" if m.name else m.text)
                   for m in chat.messages[:n]]
        ids, s, cs = timed_cpu(lambda history=history: naive_prompt(jinja, tok, system, history, budget))
        naive_times.append(s)
        naive_cpu.append(cs)
        naive_len = len(ids)
        text = jinja.render_text([Message("system", system), *history])
        _, _, t_tok = timed_cpu(lambda text=text: tok.tokenize(text, special=True))
        tokenize_only.append(t_tok)
    naive_ms = median(naive_times) * 1000
    naive_cpu_ms = median(naive_cpu) * 1000
    tok_ms = median(tokenize_only) * 1000
    print(f"  naive: median {naive_ms:.0f} ms/turn wall, {naive_cpu_ms:.0f} ms CPU, over {naive_turns} turns "
          f"(last prompt {naive_len} tokens); tokenizing the whole rendered history alone: {tok_ms:.0f} ms CPU")
    print(target_line("median build time per turn", f"{ours_ms:.1f} ms wall, {ours_cpu:.1f} ms CPU",
                      f"<= {TARGET_MS:.0f} ms", ours_ms <= TARGET_MS))
    ratio = naive_cpu_ms / ours_cpu
    print(target_line("speed-up over the naive way (CPU time)", f"{ratio:.1f}x (wall {naive_ms / ours_ms:.1f}x; "
                      f"vs tokenizing alone {tok_ms / ours_cpu:.1f}x)", f">= {TARGET_RATIO:.0f}x",
                      ratio >= TARGET_RATIO))
    return 0


if __name__ == "__main__":
    sys.exit(main())
