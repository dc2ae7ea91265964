"""`rp-context render`: the fitted prompt for the next reply, or with --json its report."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..tokens import TokenCounter


def register(sub: Any) -> None:
    p = sub.add_parser("render", help="print the fitted prompt for the next reply")
    p.add_argument("--card", action="append", default=[], help="character card (repeat for a group)")
    p.add_argument("--roster", help="group roster file (its members' cards are loaded)")
    p.add_argument("--chat", required=True, help="chat file (SillyTavern JSONL); 'latest': the cast's latest chat in the app's chat folder")
    p.add_argument("--preset", default=None, help="bundle name, family name, preset file, FILE.jinja or gguf:MODEL (gguf: alone: --model's own template)")
    p.add_argument("--budget", default=None, help="budget policy preset (default: the bundle's)")
    p.add_argument("--persona", help="persona file")
    p.add_argument("--speaker", help="who replies (a card name; default: the first card)")
    p.add_argument("--model", help="GGUF model for exact token counts (default: the default model)")
    p.add_argument("--estimate", action="store_true", help="count with tiktoken instead of the model")
    p.add_argument("--context", type=int, default=8192, help="context window in tokens")
    p.add_argument("--reserve", type=int, default=None, help="tokens kept for the reply")
    p.add_argument("--mode", choices=["normal", "continue", "impersonate"], default="normal")
    p.add_argument("--json", action="store_true", help="print a JSON object with the report")
    p.set_defaults(func=_render)


def make_counter(model: str | None, estimate: bool) -> TokenCounter:
    """The exact tokenizer of the model, or the tiktoken estimate."""
    from ..models import resolve_model
    from ..tokens import LlamaTokenizer, TiktokenCounter

    if estimate:
        return TiktokenCounter()
    return LlamaTokenizer(resolve_model(model))


def _render(args: argparse.Namespace) -> int:
    from ..errors import InputFileError
    from ..pipeline import build_prompt, load_cast, load_setup, read_chat
    from ._options import chat_arg, session_options

    if not args.card and not args.roster:
        raise InputFileError(None, "render needs --card FILE (or --roster FILE)")
    options = session_options(args)
    setup = load_setup(options.setup_spec(), budget=options.budget)
    cast = load_cast(args.card, roster=args.roster, persona=args.persona)
    chat, chat_warnings = read_chat(chat_arg(args.chat, args.card, args.roster, must_exist=True))
    counter = make_counter(args.model, args.estimate)
    fitted = build_prompt(
        cast, chat, setup, counter, n_ctx=options.n_ctx, reserve=options.reserve,
        speaker=args.speaker, mode=args.mode,
    )
    for w in [*cast.warnings, *chat_warnings, *fitted.assembled.warnings]:
        print(f"warning: {w}", file=sys.stderr)
    if not args.json:
        sys.stdout.write(fitted.text)
        return 0
    r = fitted.report
    out = {
        "text": fitted.text,
        "tokens": r.tokens,
        "tokenizer": r.tokenizer,
        "tokenizer_name": r.tokenizer_name,
        "n_ctx": r.n_ctx,
        "reserve": r.reserve,
        "sections": r.sections,
        "kinds": r.kinds,
        "structure_tokens": r.structure_tokens,
        "structure_percent": r.structure_percent,
        "reductions": r.reductions,
        "dropped": r.dropped,
        "stripped": sorted(r.stripped),
        "stripped_tiers": r.stripped,
        "batched": r.batched,
        "consolidated": r.consolidated,
        "examples_dropped": r.examples_dropped,
        "lore": r.lore,
        "segments": r.segments,
        "stop": fitted.stop,
        "estimated_tokens": r.estimated_tokens,
        "retention": {
            "window_fill": r.window_fill,
            "history_share": r.history_share,
            "turns_evicted": r.turns_evicted,
            "turns_covered_by_memory": r.turns_covered,
            "eviction": r.eviction,
            "low_water": r.low_water,
            "low_water_clamped": r.low_water_clamped,
            "front": r.front,
        },
        "memory": r.memory,
    }
    print(json.dumps(out, ensure_ascii=False, indent=2))
    return 0
