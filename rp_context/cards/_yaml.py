"""YAML for hand-edited files: safe loading only, multi-line text dumped as `|` blocks."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any

import yaml

from ..errors import InputFileError
from ..safeload import loads_yaml
from ._base import Warn

__all__ = ["dump_yaml", "load_yaml"]


class _Dumper(yaml.SafeDumper):
    """SafeDumper with `|` blocks for multi-line strings and no anchors/aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


_OTHER_BREAKS = ("\x85", "\u2028", "\u2029")


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # PyYAML falls back to a quoted style by itself when a block cannot hold the text exactly
    # (trailing spaces, \r, control characters). YAML readers turn NEL and the Unicode line and
    # paragraph separators into plain line breaks outside double quotes, so those get quotes.
    if any(ch in value for ch in _OTHER_BREAKS):
        style: str | None = '"'
    else:
        style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump_yaml(doc: Any) -> str:
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


def load_yaml(text: str, path: Path | None, error: type[InputFileError], warn: Warn) -> Any:
    """Parse YAML text under rp_context.safeload's guards; dates become ISO text (with a warning)."""
    doc = loads_yaml(text, path=path, error=error, warn=warn)
    return _plain(doc, "", warn)


def _plain(value: Any, where: str, warn: Warn) -> Any:
    """Only JSON types survive: YAML dates become ISO strings, non-string keys become strings."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                warn(f"YAML key {key!r} is not text; read as {str(key)!r}")
                key = str(key)
            out[key] = _plain(item, f"{where}.{key}" if where else key, warn)
        return out
    if isinstance(value, list):
        return [_plain(item, f"{where}[{i}]", warn) for i, item in enumerate(value)]
    if isinstance(value, (_dt.date, _dt.datetime)):
        warn(f"{where} was a YAML date; read as the text {value.isoformat()!r}")
        return value.isoformat()
    if isinstance(value, bytes):
        warn(f"{where} was YAML binary data; read as text")
        return value.decode("utf-8", errors="replace")
    return value
