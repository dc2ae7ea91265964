"""Guarded decoding of user JSON and YAML: the one place that bounds what a file can cost.

Every JSON or YAML document a user hands rp-context goes through `loads_json` / `loads_yaml`:

- nesting deeper than `MAX_DEPTH` levels is refused (no `RecursionError` anywhere later);
- integers beyond 64 bits and numbers that are not finite (`NaN`, `Infinity`, `1e999`,
  YAML `.inf`) are refused, naming the key;
- a YAML document whose aliases expand past `MAX_NODES` values (an "alias bomb") is refused
  before anything walks it;
- lone surrogates (`"\\ud800"` escapes) are replaced by U+FFFD with a warning, or refused
  where the caller has no warnings to give.

Failures are the caller's `InputFileError` subclass, naming the file and the line or key.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from .errors import InputFileError

__all__ = [
    "MAX_DEPTH",
    "MAX_INT",
    "MAX_NODES",
    "check_tree",
    "clean_surrogates",
    "flat_name",
    "has_surrogates",
    "loads_json",
    "loads_yaml",
]

MAX_DEPTH = 100
"""Deepest nesting of lists and mappings a user file may have."""
MAX_NODES = 2_000_000
"""Most values a document may hold once YAML aliases are expanded."""
MAX_INT = 2**63 - 1
"""Largest integer magnitude a user file may hold (no format needs more than 64 bits)."""
_MAX_INT_DIGITS = 19

_SURROGATE = re.compile("[\ud800-\udfff]")

Warn = Callable[[str], None]


def has_surrogates(text: str) -> bool:
    """Whether `text` holds a lone surrogate (which UTF-8 cannot encode)."""
    return _SURROGATE.search(text) is not None


def clean_surrogates(text: str) -> str:
    """`text` with every lone surrogate replaced by U+FFFD, the replacement character."""
    return _SURROGATE.sub("\ufffd", text) if has_surrogates(text) else text


_LINE_BREAKS = re.compile(r"\s*[\r\n\v\f\x85\u2028\u2029]+\s*")


def flat_name(name: str, warn: Warn | None = None, what: str = "name") -> str:
    """A name on one line: line breaks (which could forge a `Name:` line or a turn in the
    prompt) become single spaces, with a warning."""
    flat = _LINE_BREAKS.sub(" ", name).strip() if _LINE_BREAKS.search(name) else name
    if flat != name and warn is not None:
        warn(f"the {what} {flat[:40]!r} had line breaks; they were made spaces")
    return flat


class _Refused(Exception):
    """A guard refused the document; `reason` is the one line for the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _fail(error: type[InputFileError], path: str | Path | None, where: str | None, reason: str) -> InputFileError:
    return error(path, f"{where}: {reason}" if where else reason)


def _json_int(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_INT_DIGITS:
        raise _Refused(f"the integer {text[:12]}... has {len(text)} digits, more than 64 bits hold")
    return int(text)


def _json_constant(text: str) -> float:
    raise _Refused(f"{text} is not a finite number (JSON has no {text})")


def loads_json(
    text: str,
    *,
    path: str | Path | None,
    error: type[InputFileError],
    where: str | None = None,
    warn: Warn | None = None,
) -> Any:
    """Parse JSON text under the guards; `error(path, ...)` names the file, `where` the part."""
    try:
        doc = json.loads(text, parse_int=_json_int, parse_constant=_json_constant)
    except json.JSONDecodeError as exc:
        raise _fail(error, path, where, f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    except _Refused as exc:
        raise _fail(error, path, where, exc.reason) from None
    except RecursionError:
        raise _fail(error, path, where, f"nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # int() limits the digits it converts; keep the message short
        raise _fail(error, path, where, f"a number is out of range ({str(exc)[:80]})") from None
    return check_tree(doc, path=path, error=error, where=where, warn=warn)


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that counts the values an alias stands for while composing (alias bombs)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._sizes: dict[int, int] = {}
        self._total = 0

    def compose_node(self, parent: Any, index: Any) -> Any:  # noqa: ANN401 - PyYAML's signature
        if self.check_event(yaml.AliasEvent):
            anchor = self.peek_event().anchor
            node = self.anchors.get(anchor)
            size = self._sizes.get(id(node), 1) if node is not None else 1
        else:
            size = 0
        node = super().compose_node(parent, index)
        if size == 0:
            size = 1 + _children_size(node, self._sizes)
            self._sizes[id(node)] = size
        else:
            self._total += size
            if self._total > MAX_NODES:
                raise _Refused(f"its aliases expand to more than {MAX_NODES:,} values (an alias bomb?)")
        return node


def _children_size(node: Any, sizes: dict[int, int]) -> int:
    if isinstance(node, yaml.MappingNode):
        return sum(sizes.get(id(k), 1) + sizes.get(id(v), 1) for k, v in node.value)
    if isinstance(node, yaml.SequenceNode):
        return sum(sizes.get(id(v), 1) for v in node.value)
    return 0


def loads_yaml(
    text: str,
    *,
    path: str | Path | None,
    error: type[InputFileError],
    where: str | None = None,
    warn: Warn | None = None,
) -> Any:
    """Parse YAML text safely under the guards; errors name the file and the line, in one line."""
    loader = _BoundedLoader(text)
    try:
        doc = loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark is not None else ""
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
        raise _fail(error, path, where, f"{line}invalid YAML ({problem})") from exc
    except _Refused as exc:
        raise _fail(error, path, where, exc.reason) from None
    except RecursionError:
        raise _fail(error, path, where, f"nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:
        raise _fail(error, path, where, f"a number is out of range ({str(exc)[:80]})") from None
    finally:
        loader.dispose()
    return check_tree(doc, path=path, error=error, where=where, warn=warn)


def _key_path(trail: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in trail) or "the document"


def check_tree(
    doc: Any,
    *,
    path: str | Path | None,
    error: type[InputFileError],
    where: str | None = None,
    warn: Warn | None = None,
) -> Any:
    """Walk a decoded document without recursion, enforcing the guards; returns it, cleaned.

    Lone surrogates in text and keys are replaced in place (with one warning), or refused
    when `warn` is None.
    """
    fixed: list[str] = []

    def text(value: str, trail: tuple[Any, ...]) -> str:
        if not has_surrogates(value):
            return value
        if warn is None:
            raise _fail(error, path, where, f"{_key_path(trail)}: holds a lone surrogate (\\ud800-\\udfff), not text")
        fixed.append(_key_path(trail))
        return clean_surrogates(value)

    if isinstance(doc, str):
        doc = text(doc, ())
    seen = 0
    stack: list[tuple[Any, tuple[Any, ...]]] = [(doc, ())]
    while stack:
        node, trail = stack.pop()
        seen += 1
        if seen > MAX_NODES:
            raise _fail(error, path, where, f"holds more than {MAX_NODES:,} values")
        if len(trail) > MAX_DEPTH:
            raise _fail(error, path, where, f"nested deeper than {MAX_DEPTH} levels (at {_key_path(trail[:8])}...)")
        if isinstance(node, dict):
            if any(isinstance(k, str) and has_surrogates(k) for k in node):
                items = [(text(k, (*trail, k)) if isinstance(k, str) else k, v) for k, v in node.items()]
                node.clear()
                node.update(items)
            for key, value in node.items():
                if isinstance(value, str):
                    if has_surrogates(value):
                        node[key] = text(value, (*trail, key))
                else:
                    _scalar(value, (*trail, key), error, path, where)
                    if isinstance(value, (dict, list)):
                        stack.append((value, (*trail, key)))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                if isinstance(value, str):
                    if has_surrogates(value):
                        node[index] = text(value, (*trail, index))
                else:
                    _scalar(value, (*trail, index), error, path, where)
                    if isinstance(value, (dict, list)):
                        stack.append((value, (*trail, index)))
        else:
            _scalar(node, trail, error, path, where)
    if fixed and warn is not None:
        more = f" and {len(fixed) - 1} more" if len(fixed) > 1 else ""
        warn(f"{fixed[0]}{more}: lone surrogate escapes (\\ud800-\\udfff) replaced by U+FFFD")
    return doc


def _scalar(value: Any, trail: tuple[Any, ...], error: type[InputFileError], path: Any, where: str | None) -> None:
    if isinstance(value, bool):
        return
    if isinstance(value, int) and abs(value) > MAX_INT:
        raise _fail(error, path, where, f"{_key_path(trail)}: the integer is larger than 64 bits hold")
    if isinstance(value, float) and not math.isfinite(value):
        raise _fail(error, path, where, f"{_key_path(trail)}: {value} is not a finite number")
