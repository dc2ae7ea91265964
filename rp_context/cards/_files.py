"""Reading small JSON/YAML documents (personas, rosters) with one-line errors naming the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..atomic import write_bytes_atomic
from ..errors import CardError
from ._base import Warn
from ._yaml import dump_yaml, load_yaml

__all__ = ["read_document", "write_document"]


def read_document(path: str | Path, what: str, limit: int, warn: Warn) -> tuple[Path, Any]:
    """Parse a JSON or YAML file (by extension; content decides for others)."""
    p = Path(path)
    try:
        if p.stat().st_size > limit:
            raise CardError(p, f"the {what} file is larger than {limit // (1024 * 1024)} MiB")
        data = p.read_bytes()
    except FileNotFoundError as exc:
        raise CardError(p, f"{what} file not found") from exc
    except IsADirectoryError as exc:
        raise CardError(p, f"is a directory, not a {what} file") from exc
    except OSError as exc:
        raise CardError(p, f"cannot read the {what} file ({exc.strerror or exc})") from exc
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CardError(p, f"the {what} file is not UTF-8 text") from exc
    is_json = p.suffix.lower() == ".json" or (
        p.suffix.lower() not in (".yaml", ".yml") and text.lstrip()[:1] in ("{", "[")
    )
    if is_json:
        try:
            return p, json.loads(text)
        except json.JSONDecodeError as exc:
            raise CardError(p, f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    return p, load_yaml(text, p, CardError, warn)


def write_document(path: str | Path, doc: dict[str, Any], *, header: str = "", what: str) -> Path:
    """Write JSON (for .json) or YAML (otherwise) atomically."""
    p = Path(path)
    if p.suffix.lower() == ".json":
        text = json.dumps(doc, ensure_ascii=False, indent=2) + "\n"
    else:
        text = header + dump_yaml(doc)
    try:
        write_bytes_atomic(p, text.encode("utf-8"))
    except OSError as exc:
        raise CardError(p, f"cannot write the {what} file ({exc.strerror or exc})") from exc
    return p
