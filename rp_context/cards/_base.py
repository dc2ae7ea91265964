"""The lossless model base and the lenient coercions every card-like file shares.

Rules:

* Unknown keys are kept (`extra="allow"`) and written back where they were.
* A declared field is written when it is required by its format (`_always`) or when the input
  (or the program) set it, so an optional key that was absent stays absent and one that was an
  explicit `null` stays `null`.
* Known real-world type mistakes are repaired before validation, each with a warning that names
  the key; the warnings go to `context["warnings"]` when the caller passes a list there.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    SerializerFunctionWrapHandler,
    ValidationInfo,
    model_serializer,
)

__all__ = ["LosslessModel", "Warn", "warner", "join_path"]

Warn = Callable[[str], None]


def _ignore(_: str) -> None:
    return None


def warner(info: ValidationInfo | None) -> Warn:
    """The warning sink in a validation context: `context={"warnings": [...]}`, else a no-op."""
    ctx = info.context if info is not None else None
    if isinstance(ctx, dict) and isinstance(ctx.get("warnings"), list):
        sink: list[str] = ctx["warnings"]

        def warn(msg: str) -> None:
            if msg not in sink:
                sink.append(msg)

        return warn
    return _ignore


def join_path(prefix: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    return f"{prefix}.{key}" if prefix else key


class LosslessModel(BaseModel):
    """Base of every file model that must survive load → save → load unchanged."""

    model_config = ConfigDict(extra="allow", validate_assignment=False, populate_by_name=True)

    _always: ClassVar[frozenset[str]] = frozenset()
    """Declared fields written even when nobody set them (the format requires them)."""

    @model_serializer(mode="wrap")
    def _lossless_dump(self, handler: SerializerFunctionWrapHandler) -> Any:
        out = handler(self)
        if not isinstance(out, dict):  # pragma: no cover - handler always gives a dict for models
            return out
        keep = self._always | self.model_fields_set
        for name in type(self).model_fields:
            if name not in keep:
                out.pop(name, None)
        return out

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict, exactly as the file format writes it."""
        return self.model_dump(mode="json")


# ---------------------------------------------------------------- coercions of raw JSON values

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0", ""}
_NUMBER = re.compile(r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$")
_INTEGER = re.compile(r"^[-+]?\d+$")


def describe(value: Any) -> str:
    """A short description of a JSON value's type for warnings."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def as_text(d: dict[str, Any], key: str, path: str, warn: Warn, *, default: str | None = "") -> None:
    """Make d[key] a string: null → default, numbers and booleans → their text."""
    if key not in d:
        return
    value = d[key]
    if isinstance(value, str):
        return
    if value is None:
        if default is None:
            return
        d[key] = default
        warn(f"{path} was null; read as empty text")
    elif isinstance(value, bool):
        d[key] = "true" if value else "false"
        warn(f"{path} was a boolean; read as the text {d[key]!r}")
    elif isinstance(value, (int, float)):
        d[key] = _number_text(value)
        warn(f"{path} was a number; read as the text {d[key]!r}")


def _number_text(value: int | float) -> str:
    return str(value)


def as_text_list(
    d: dict[str, Any],
    key: str,
    path: str,
    warn: Warn,
    *,
    split_commas: bool = False,
    null_means_absent: bool = False,
) -> None:
    """Make d[key] a list of strings: a string is one item (or comma-split), null is []."""
    if key not in d:
        return
    value = d[key]
    if value is None:
        if null_means_absent:
            return
        d[key] = []
        warn(f"{path} was null; read as an empty list")
        return
    if isinstance(value, str):
        if split_commas:
            items = [part.strip() for part in value.split(",")]
            d[key] = [item for item in items if item]
            warn(f"{path} was a comma-separated string; read as a list of {len(d[key])}")
        else:
            d[key] = [value] if value.strip() else []
            warn(f"{path} was a string, not a list; read as a list of {len(d[key])}")
        return
    if isinstance(value, (list, tuple)):
        fixed: list[Any] = []
        changed = False
        for item in value:
            if isinstance(item, str):
                fixed.append(item)
            elif item is None:
                changed = True
            elif isinstance(item, (bool, int, float)):
                fixed.append(str(item).lower() if isinstance(item, bool) else _number_text(item))
                changed = True
            else:
                fixed.append(item)  # leave it for the validator to reject with the path
        if changed:
            warn(f"{path} held non-text items; converted them to text and dropped nulls")
            d[key] = fixed
        elif isinstance(value, tuple):
            d[key] = list(value)


def as_bool(d: dict[str, Any], key: str, path: str, warn: Warn, *, null_means_absent: bool = True) -> None:
    """Make d[key] a boolean when it is the text "true"/"false" or the number 0/1."""
    if key not in d:
        return
    value = d[key]
    if isinstance(value, bool) or (value is None and null_means_absent):
        return
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        d[key] = value.strip().lower() in _TRUE
        warn(f"{path} was the text {value!r}; read as {d[key]!r}")
    elif isinstance(value, (int, float)) and value in (0, 1):
        d[key] = bool(value)
        warn(f"{path} was the number {value!r}; read as {d[key]!r}")


def as_number(
    d: dict[str, Any], key: str, path: str, warn: Warn, *, integer: bool = False
) -> None:
    """Make d[key] a number when it is numeric text ("100", "0.5")."""
    if key not in d:
        return
    value = d[key]
    if isinstance(value, str) and _NUMBER.match(value):
        text = value.strip()
        number: int | float = int(text) if _INTEGER.match(text) else float(text)
        if integer and isinstance(number, float) and number.is_integer():
            number = int(number)
        d[key] = number
        warn(f"{path} was the text {value!r}; read as the number {number!r}")
    elif integer and isinstance(value, float) and value.is_integer():
        d[key] = int(value)


def as_object(d: dict[str, Any], key: str, path: str, warn: Warn, *, required: bool, quiet: bool = False) -> None:
    """Make d[key] an object: missing (when required) or null → {}."""
    if key not in d:
        if required:
            d[key] = {}
            if not quiet:
                warn(f"{path} was missing; added an empty object")
        return
    if d[key] is None:
        d[key] = {}
        warn(f"{path} was null; read as an empty object")


def fill_missing(d: dict[str, Any], keys: Iterable[str], value: Callable[[], Any]) -> list[str]:
    """Add each missing key with a fresh default; return the keys that were added."""
    added = []
    for key in keys:
        if key not in d:
            d[key] = value()
            added.append(key)
    return added
