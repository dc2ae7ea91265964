"""`rp-chat` (and `python -m tui`): open the chat app; bad input is one line on stderr, exit 2."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rp-chat", description="Roleplay chat in the terminal, on a local model.")
    p.add_argument("--card", action="append", default=[],
                   help="character card (repeat for a group; default: the sample card)")
    p.add_argument("--roster", help="group roster file (kind: roster YAML or a SillyTavern group)")
    p.add_argument("--persona", help="persona file (default: the one in settings, else User)")
    p.add_argument("--chat", help="chat file (SillyTavern JSONL) to open; default: the latest, else new")
    p.add_argument("--new", action="store_true", help="start a new chat even if there is an older one")
    p.add_argument("--preset", help="bundle name, family name or preset file (default: settings, else default)")
    p.add_argument("--budget", help="budget policy preset (default: the bundle's)")
    p.add_argument("--model", help="GGUF model (default: settings, $RP_CONTEXT_MODEL or SmolLM2-135M)")
    p.add_argument("--server", help="OpenAI-compatible server URL instead of the in-process model")
    p.add_argument("--context", type=int, help="context window in tokens (default: settings, 4096)")
    p.add_argument("--reserve", type=int, help="tokens kept for the reply (default: max tokens)")
    p.add_argument("--n-gpu-layers", type=int, help="layers to offload (-1: all; default: settings, 0)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from pydantic import ValidationError

    from rp_context.errors import RPContextError

    from .config import load_settings
    from .sessions import ChatSpec, open_session

    try:
        settings = load_settings()
        overrides = {"model": args.model, "context": args.context, "n_gpu_layers": args.n_gpu_layers}
        settings = settings.model_validate({**settings.model_dump(),
                                            **{k: v for k, v in overrides.items() if v is not None}})
        spec = ChatSpec(cards=tuple(args.card), roster=args.roster, persona=args.persona,
                        preset=args.preset, budget=args.budget,
                        chat=Path(args.chat) if args.chat else None, server=args.server,
                        reserve=args.reserve)
        session = open_session(spec, settings, fresh=args.new)
    except RPContextError as exc:
        print(f"rp-chat: error: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:  # a bad --context / --n-gpu-layers value
        err = exc.errors()[0]
        flag = {"context": "--context", "n_gpu_layers": "--n-gpu-layers"}.get(str(err["loc"][0]), "")
        print(f"rp-chat: error: {flag or err['loc'][0]}: {err['msg']}", file=sys.stderr)
        return 2
    from .app import RPChatApp

    RPChatApp(session, spec=spec, settings=settings).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
