"""`rp-context generate`: one headless turn with a card, streamed to stdout."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..models import resolve_model
from ..paths import default_card_path
from ..quickstart import chatml_parts, read_simple_card


def register(sub: Any) -> None:
    gen = sub.add_parser("generate", help="run one turn headless and stream the reply to stdout")
    gen.add_argument("--card", help="character card JSON (default: the sample card)")
    gen.add_argument("--message", "-m", required=True, help="what you say to the character")
    gen.add_argument("--user", default="User", help="your name in the roleplay (default: User)")
    gen.add_argument("--model", help="GGUF model (default: $RP_CONTEXT_MODEL or SmolLM2-135M)")
    gen.add_argument("--context", type=int, default=4096, help="context window in tokens")
    gen.add_argument("--max-tokens", type=int, default=200, help="reply length limit")
    gen.add_argument("--temperature", type=float, default=0.8)
    gen.add_argument("--seed", type=int, default=None, help="sampling seed for repeatable replies")
    gen.add_argument("--n-gpu-layers", type=int, default=0, help="layers to offload (-1: all)")
    gen.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object with the reply and the turn's metrics instead of streaming",
    )
    gen.set_defaults(func=_generate)


def _generate(args: argparse.Namespace) -> int:
    # Check every input before loading anything heavy.
    model_path = resolve_model(args.model)
    card = read_simple_card(args.card or default_card_path())

    from ..backends.llama import LlamaBackend
    from ..tokens import LlamaTokenizer

    tokenizer = LlamaTokenizer(model_path)
    ids = tokenizer.tokenize_parts(chatml_parts(card, args.message, user=args.user))
    backend = LlamaBackend(model_path, n_ctx=args.context, n_gpu_layers=args.n_gpu_layers)
    out = sys.stdout
    stream = backend.stream(
        ids,
        max_tokens=args.max_tokens,
        temperature=args.temperature,
        seed=args.seed,
        stop=["<|im_end|>", "<|im_start|>", f"\n{args.user}:"],
    )
    if args.json:
        result = stream.collect()
        out.write(json.dumps({"text": result.text, "metrics": result.metrics.model_dump()}) + "\n")
        return 0
    for piece in stream:
        out.write(piece)
        out.flush()
    out.write("\n")
    return 0
