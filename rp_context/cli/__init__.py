"""The `rp-context` command line: one subcommand module per area, errors as one line and exit 2."""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Sequence

from ..errors import RPContextError

__all__ = ["main", "build_parser"]

# Each module defines `register(subparsers)`; a subcommand sets `func(args) -> int` on its parser.
_COMMAND_MODULES = [
    "rp_context.cli.model",
    "rp_context.cli.generate",
    "rp_context.cli.format",
    "rp_context.cli.preset",
    "rp_context.cli.card",
    "rp_context.cli.render",
    "rp_context.cli.chat",
    "rp_context.cli.template",
]

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line on stderr and exit code 2 (as argparse does)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every registered subcommand."""
    parser = _Parser(
        prog="rp-context",
        description="Roleplay prompt builder and context-budget manager for local GGUF models.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def _one_line_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                      line: str | None = None) -> str:
    return f"warning: {' '.join(str(message).split())}\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `rp-context`; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["chat"]:  # everything after `chat` belongs to the app, even --help
        from .chat import run_app

        return run_app(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    warnings.formatwarning = _one_line_warning
    try:
        code = int(args.func(args) or 0)
    except RPContextError as exc:
        print(f"rp-context: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        return 0
    except OSError as exc:  # the file system said no (a name too long, a full disk): one line
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        print(f"rp-context: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (RecursionError, MemoryError) as exc:
        print(f"rp-context: error: the input is too large or nested too deeply ({type(exc).__name__})",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
