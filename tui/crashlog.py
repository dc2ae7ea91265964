"""Unexpected errors go to `logs/rp-chat.log` in the user data folder, with the traceback, so a
crash can be reported; the app shows where the file is."""

from __future__ import annotations

import datetime as _dt
import traceback
from pathlib import Path
from typing import Any

from textual.app import App

from .config import logs_dir

__all__ = ["log_error", "log_path", "report_error"]


def log_path() -> Path:
    return logs_dir() / "rp-chat.log"


def log_error(error: BaseException, where: str = "") -> Path | None:
    """Append `error` with its traceback to the log; None when even that fails (read-only disk)."""
    path = log_path()
    stamp = _dt.datetime.now().isoformat(timespec="seconds")
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as fh:
            fh.write(f"--- {stamp} {where}\n{text}\n")
    except OSError:
        return None
    return path


def report_error(app: App[Any], error: BaseException, what: str) -> None:
    """An unexpected error in a background job: log it and say so; the chat on disk is intact."""
    path = log_error(error, what)
    where = f" (details in {path})" if path else ""
    app.notify(f"{type(error).__name__}: {error}{where}", title=f"{what} failed",
               severity="error", timeout=15)
