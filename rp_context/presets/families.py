"""Instruct template families by name: the shipped instruct presets and the user's own, and the
aliases llama.cpp uses for some of them."""

from __future__ import annotations

from ..errors import PresetError, TemplateError
from ..templates.model import InstructTemplate
from .library import find_preset, list_presets
from .yamlio import load_preset_file

__all__ = ["FAMILY_ALIASES", "get_family", "list_families"]

FAMILY_ALIASES: dict[str, str] = {"llama2-sys": "llama2", "plain-text": "plain", "text": "plain"}
"""Other names accepted for a family (llama.cpp's `llama2-sys` is our `llama2`)."""


def list_families() -> list[str]:
    """Names of the instruct presets shipped with rp-context (and the user's own)."""
    return [e.name for e in list_presets("instruct")]


def get_family(name: str) -> InstructTemplate:
    """The instruct template called `name` (a shipped family or a user instruct preset)."""
    key = FAMILY_ALIASES.get(name, name)
    try:
        entry = find_preset(key, "instruct")
    except PresetError as exc:
        raise TemplateError(
            f"unknown template {name!r}; known: {', '.join(list_families())}"
        ) from exc
    preset = load_preset_file(entry.path)
    assert isinstance(preset, InstructTemplate)
    return preset
