"""Reading small JSON/YAML documents (personas, rosters) with one-line errors naming the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..atomic import write_bytes_atomic
from ..errors import CardError
from ..files import decode_text, read_limited
from ..safeload import loads_json
from ._base import Warn
from ._yaml import dump_yaml, load_yaml

__all__ = ["read_document", "write_document"]


def read_document(path: str | Path, what: str, limit: int, warn: Warn) -> tuple[Path, Any]:
    """Parse a JSON or YAML file (by extension; content decides for others)."""
    p = Path(path)
    p, data = read_limited(p, error=CardError, what=what, limit=limit)
    text = decode_text(p, data, error=CardError, what=what)
    is_json = p.suffix.lower() == ".json" or (
        p.suffix.lower() not in (".yaml", ".yml") and text.lstrip()[:1] in ("{", "[")
    )
    if is_json:
        return p, loads_json(text, path=p, error=CardError, warn=warn)
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
