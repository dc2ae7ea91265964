"""`rp-chat` (and `python -m tui`): open the chat app."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rp_context.errors import RPContextError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rp-chat", description="Roleplay chat in the terminal.")
    parser.add_argument("--card", help="character card (default: the sample card)")
    parser.add_argument("--model", help="GGUF model (default: $RP_CONTEXT_MODEL or SmolLM2-135M)")
    parser.add_argument("--user", default="User", help="your name in the roleplay")
    parser.add_argument("--context", type=int, default=4096, help="context window in tokens")
    parser.add_argument("--n-gpu-layers", type=int, default=0, help="layers to offload (-1: all)")
    args = parser.parse_args(argv)
    from .app import ChatApp, LlamaSession

    try:
        session = LlamaSession.open(
            card=args.card,
            model=args.model,
            user=args.user,
            n_ctx=args.context,
            n_gpu_layers=args.n_gpu_layers,
        )
    except RPContextError as exc:
        print(f"rp-chat: error: {exc}", file=sys.stderr)
        return 2
    ChatApp(session).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
