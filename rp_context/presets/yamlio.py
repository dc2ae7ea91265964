"""Preset files as YAML: safe loading with the file, line and key in every error, and dumping
with multi-line strings in `|` block style so shared presets stay readable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from ..atomic import write_text_atomic
from ..errors import PresetError
from ..files import decode_text, read_limited
from ..safeload import loads_yaml
from .models import MODEL_BY_KIND, PRESET_VERSION

__all__ = ["load_preset_file", "parse_preset_text", "dump_preset", "save_preset", "kind_of"]

PRESET_SIZE_LIMIT = 4 * 1024 * 1024
_HEADER = ("kind", "version")


def kind_of(preset: BaseModel) -> str:
    """The `kind` a preset model is written as."""
    for kind, cls in MODEL_BY_KIND.items():
        if type(preset) is cls:
            return kind
    raise TypeError(f"not a preset model: {type(preset).__name__}")


def _key_lines(text: str) -> dict[str, int]:
    """Line number (1-based) of each top-level key."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    lines: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key, _value in node.value:
            if isinstance(key, yaml.ScalarNode):
                lines.setdefault(str(key.value), key.start_mark.line + 1)
    return lines


def parse_preset_text(text: str, path: str | Path | None = None) -> BaseModel:
    """Validate preset YAML text into its model; PresetError names the file, line and key."""
    data = loads_yaml(text, path=path, error=PresetError)
    if not isinstance(data, dict):
        raise PresetError(path, "a preset file must be a YAML mapping with kind, version and name")
    lines = _key_lines(text)

    def at(key: str) -> str:
        return f"line {lines[key]}: " if key in lines else ""

    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in MODEL_BY_KIND:
        raise PresetError(
            path,
            f"{at('kind')}'kind' must be one of {', '.join(MODEL_BY_KIND)} (got {kind!r})",
        )
    version = data.get("version")
    if version != PRESET_VERSION:
        raise PresetError(path, f"{at('version')}'version' must be {PRESET_VERSION} (got {version!r})")
    body = {k: v for k, v in data.items() if k not in _HEADER}
    cls = MODEL_BY_KIND[kind]
    for key in body:
        if not isinstance(key, str) or key not in cls.model_fields:
            raise PresetError(path, f"{at(str(key))}unknown key {key!r} in a {kind} preset")
    try:
        return cls.model_validate(body)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = str(err["loc"][0]) if err["loc"] else ""
        loc = ".".join(str(x) for x in err["loc"])
        if err["type"] == "missing":
            raise PresetError(path, f"missing key {loc!r} in a {kind} preset") from exc
        raise PresetError(path, f"{at(key)}{loc}: {err['msg']}") from exc


def load_preset_file(path: str | Path) -> BaseModel:
    """Read and validate one YAML preset file."""
    p, data = read_limited(path, error=PresetError, what="preset", limit=PRESET_SIZE_LIMIT)
    return parse_preset_text(decode_text(p, data, error=PresetError, what="preset"), p)


class _Dumper(yaml.SafeDumper):
    """SafeDumper that writes multi-line strings as `|` blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump_preset(preset: BaseModel, *, full: bool = False) -> str:
    """YAML text of a preset: header first, then the fields that were set (all with `full`)."""
    kind = kind_of(preset)
    data: dict[str, Any] = {"kind": kind, "version": PRESET_VERSION}
    dumped = preset.model_dump(mode="json")
    keys = list(type(preset).model_fields)
    chosen = set(keys) if full else set(preset.model_fields_set) | {"name"}
    for key in keys:
        if key not in chosen:
            continue
        value = dumped[key]
        if key == "description" and value is None:
            continue
        if key == "sillytavern_extra" and not value:
            continue
        data[key] = value
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


def save_preset(preset: BaseModel, path: str | Path, *, full: bool = False) -> Path:
    """Write a preset file atomically."""
    p = Path(path)
    write_text_atomic(p, dump_preset(preset, full=full))
    return p
