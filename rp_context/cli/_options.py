"""The command line's flags as the `SessionOptions` the library and the app share."""

from __future__ import annotations

import argparse

from pydantic import ValidationError

from ..errors import InputFileError, RPContextError
from ..session import SessionOptions

__all__ = ["LATEST", "chat_arg", "session_options"]

LATEST = "latest"
"""`--chat latest`: the cast's most recent chat in the app's chat folder."""

_FLAGS = {
    "preset": "preset",
    "budget": "budget",
    "sampler": "sampler",
    "max_tokens": "max_tokens",
    "model": "model",
    "server": "server",
    "summary_server": "summary_server",
    "n_ctx": "context",
    "reserve": "reserve",
    "n_gpu_layers": "n_gpu_layers",
    "kv_state": "kv_state",
    "kv_state_limit_mb": "kv_state_limit",
}
"""Each option and the `args` attribute of the flag that sets it (where a command has it)."""


def session_options(args: argparse.Namespace) -> SessionOptions:
    """The options the command's flags give (a flag left out keeps the option's default); a bad
    value is an RPContextError naming the flag."""
    values = {name: getattr(args, dest) for name, dest in _FLAGS.items()
              if getattr(args, dest, None) is not None}
    try:
        return SessionOptions(**values)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        flag = "--" + _FLAGS[str(error["loc"][0])].replace("_", "-")
        raise RPContextError(f"{flag}: {error['msg']}") from exc


def chat_arg(value: str | None, cards: list[str], roster: str | None, *, must_exist: bool) -> str | None:
    """A `--chat` argument as a file: `latest` is the cast's most recent chat in the app's chat
    folder (the one the app would resume; a new file there when `must_exist` is false)."""
    if value != LATEST:
        return value
    from ..chatfolder import cast_chat_path, chats_root

    path = cast_chat_path(cards, roster)
    if must_exist and not path.exists():
        raise InputFileError(chats_root(), "--chat latest: no chat of this cast here yet")
    return str(path)
