"""Presets people share: instruct, context, system prompt, sampler and bundle, as YAML files,
plus SillyTavern JSON import and export."""

from __future__ import annotations

from .families import FAMILY_ALIASES, get_family, list_families
from .library import (
    PresetEntry,
    find_preset,
    list_presets,
    load_preset,
    load_sampler,
    read_preset,
)
from .models import (
    KIND_DIRS,
    PRESET_VERSION,
    BundlePreset,
    ContextPreset,
    InstructPreset,
    Preset,
    SamplerPreset,
    SysPromptPreset,
)
from .sillytavern import (
    export_sillytavern,
    import_sillytavern,
    import_sillytavern_file,
    save_sillytavern,
)
from .yamlio import dump_preset, kind_of, load_preset_file, parse_preset_text, save_preset

__all__ = [
    "FAMILY_ALIASES",
    "get_family",
    "list_families",
    "PRESET_VERSION",
    "KIND_DIRS",
    "Preset",
    "InstructPreset",
    "ContextPreset",
    "SysPromptPreset",
    "SamplerPreset",
    "BundlePreset",
    "PresetEntry",
    "list_presets",
    "find_preset",
    "load_preset",
    "load_sampler",
    "read_preset",
    "load_preset_file",
    "parse_preset_text",
    "dump_preset",
    "save_preset",
    "kind_of",
    "import_sillytavern",
    "import_sillytavern_file",
    "export_sillytavern",
    "save_sillytavern",
]
