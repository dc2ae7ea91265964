"""`rp-chat` (and `python -m tui`): open the chat app; bad input is one line on stderr, exit 2.

Without a card, roster or chat on the command line it reopens where you left off. A broken
settings file or a model path that no longer works never locks you out: the app starts on the
defaults, says what is wrong and opens the settings to fix it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rp-chat", description="Roleplay chat in the terminal, on a local model.")
    p.add_argument("--card", action="append", default=[],
                   help="character card (repeat for a group; default: where you left off, else the sample card)")
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


def prepare(args: argparse.Namespace, *, backend: Any = None, counter: Any = None) -> dict[str, Any]:
    """Settings, what to open and the open session, tolerating saved state that no longer works.
    Returns the app's keyword arguments; raises RPContextError / ValidationError for bad flags."""
    from rp_context.errors import RPContextError
    from rp_context.models import check_gguf

    from .config import Settings, SettingsError, load_settings, load_state
    from .sessions import ChatSpec, open_session

    problems: list[str] = []
    try:
        saved = load_settings()
    except SettingsError as exc:
        problems.append(f"{exc} (the app runs on defaults; saving settings keeps the old file "
                        "as settings.yaml.broken)")
        saved = Settings()
    if saved.model and not args.model:
        try:
            check_gguf(saved.model)
        except RPContextError as exc:
            problems.append(f"the model in your settings does not work: {exc}; using the default")
            saved = saved.model_copy(update={"model": None})
    overrides = {"model": args.model, "context": args.context, "n_gpu_layers": args.n_gpu_layers}
    settings = saved.model_validate({**saved.model_dump(),
                                     **{k: v for k, v in overrides.items() if v is not None}})
    state = load_state()
    named = bool(args.card or args.roster or args.chat)
    spec = ChatSpec(cards=tuple(args.card), roster=args.roster, persona=args.persona,
                    preset=args.preset, budget=args.budget,
                    chat=Path(args.chat) if args.chat else None, server=args.server,
                    reserve=args.reserve)
    session = None
    if not named and (state.cards or state.roster or state.chat):  # where you left off
        chat = Path(state.chat) if state.chat and not args.new else None
        last = ChatSpec(cards=tuple(state.cards), roster=state.roster,
                        persona=args.persona or state.persona, preset=args.preset or state.preset,
                        budget=args.budget, chat=chat if chat and chat.exists() else None,
                        server=args.server, reserve=args.reserve)
        try:
            session = open_session(last, settings, backend=backend, counter=counter,
                                   fresh=args.new)
            spec = last
        except RPContextError as exc:
            problems.append(f"could not reopen your last chat ({exc}); opened the default")
    if session is None:
        session = open_session(spec, settings, backend=backend, counter=counter, fresh=args.new)
    return {"session": session, "spec": spec, "settings": settings, "problems": problems,
            "first_run_help": not state.seen_help}


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from pydantic import ValidationError

    from rp_context.errors import RPContextError

    try:
        kwargs = prepare(args)
    except RPContextError as exc:
        print(f"rp-chat: error: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:  # a bad --context / --n-gpu-layers value
        err = exc.errors()[0]
        flag = {"context": "--context", "n_gpu_layers": "--n-gpu-layers"}.get(str(err["loc"][0]), "")
        print(f"rp-chat: error: {flag or err['loc'][0]}: {err['msg']}", file=sys.stderr)
        return 2
    try:  # textual-image asks the terminal what it can draw; it must do so before Textual starts
        import textual_image.widget  # noqa: F401
    except ImportError:
        pass
    from .app import RPChatApp

    app = RPChatApp(**kwargs)
    app.run()
    if app.return_code:
        where = f"; details in {app.crash_log}" if app.crash_log else ""
        print(f"rp-chat: stopped by an unexpected error{where}. Your chat is saved.",
              file=sys.stderr)
    return app.return_code or 0


if __name__ == "__main__":
    sys.exit(main())
