"""`rp-context chat ...`: open the terminal app (the same as `rp-chat ...`).

The app runs as its own program (`python -m tui`), so the library never imports Textual.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("chat", help="open the chat app (the same as rp-chat)", add_help=False)
    p.add_argument("args", nargs=argparse.REMAINDER, help="rp-chat's arguments (rp-chat --help)")
    p.set_defaults(func=_chat)


def _chat(args: argparse.Namespace) -> int:
    return run_app(args.args)


def run_app(argv: list[str]) -> int:
    """Replace this process with the app, passing `argv` on."""
    os.execv(sys.executable, [sys.executable, "-m", "tui", *argv])
    return 0  # pragma: no cover - execv does not return
