"""SillyTavern preset JSON in and out: instruct, context, system-prompt and sampler presets.

Import keeps every key: the ones we model become fields, legacy or unknown ones go to
`sillytavern_extra`, so exporting gives back the same keys and values.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from ..atomic import write_text_atomic
from ..errors import PresetError
from ..files import decode_text, read_limited
from ..reasoning import ReasoningFormat
from ..safeload import loads_json
from ..sampling import SamplerSettings
from ..templates.model import InstructTemplate
from .models import ContextPreset, SysPromptPreset
from .st_sampler import export_st_sampler, import_st_sampler, is_st_sampler

__all__ = [
    "import_sillytavern",
    "import_sillytavern_file",
    "export_sillytavern",
    "save_sillytavern",
    "sillytavern_kind",
    "ST_KEYS",
]

_OURS = {"description", "sillytavern_extra", "story_string_as_system"}
_INSTRUCT_EXTRAS = {
    "bos_token",
    "eos_token",
    "system_role",
    "system_merge_separator",
    "trim_content",
    "strict_alternation",
    "block_prefix",
    "generation_prompt",
    "reasoning",
    "prefix",
    "first_block_prefix",
    "last_input_suffix",
    "implicit_system",
    "message_separator",
}

ST_KEYS: dict[str, list[str]] = {
    "instruct": [k for k in InstructTemplate.model_fields if k not in _OURS | _INSTRUCT_EXTRAS],
    "context": [k for k in ContextPreset.model_fields if k not in _OURS],
    "sysprompt": [k for k in SysPromptPreset.model_fields if k not in _OURS],
}
_MODELS: dict[str, type[BaseModel]] = {
    "instruct": InstructTemplate,
    "context": ContextPreset,
    "sysprompt": SysPromptPreset,
}


def sillytavern_kind(data: dict[str, Any]) -> str | None:
    """Which kind of SillyTavern preset a JSON object is, from its keys."""
    if "input_sequence" in data or "output_sequence" in data:
        return "instruct"
    if "story_string" in data:
        return "context"
    if "content" in data:
        return "sysprompt"
    if is_st_sampler(data):
        return "sampler"
    return None


def import_sillytavern(data: Any, path: str | Path | None = None, kind: str | None = None) -> BaseModel:
    """A SillyTavern instruct, context or system-prompt preset (parsed JSON) as our model."""
    if not isinstance(data, dict):
        raise PresetError(path, "a SillyTavern preset must be a JSON object")
    kind = kind or sillytavern_kind(data)
    if kind == "reasoning":
        return reasoning_from_sillytavern(data, path)
    if kind is None and isinstance(data.get("instruct"), dict):
        return _import_master(data, path)
    if kind is None and {"prefix", "suffix"} <= data.keys():
        raise PresetError(path, "a SillyTavern reasoning template: import it with an instruct "
                                "preset (rp-context preset import INSTRUCT.json --reasoning FILE)")
    if kind == "sampler":
        return import_st_sampler(data, path)
    if kind not in _MODELS:
        raise PresetError(
            path,
            "not a SillyTavern instruct, context, system-prompt or sampler preset (no known keys)",
        )
    known = set(ST_KEYS[kind])
    fields = {k: v for k, v in data.items() if k in known}
    extra = {k: v for k, v in data.items() if k not in known}
    if kind == "sysprompt" and fields.get("post_history") is None:
        fields.pop("post_history", None)
    if extra:
        fields["sillytavern_extra"] = extra
    try:
        return _MODELS[kind].model_validate(fields)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        raise PresetError(path, f"SillyTavern {kind} preset: {loc}: {err['msg']}") from exc


def reasoning_from_sillytavern(data: Any, path: str | Path | None = None) -> ReasoningFormat:
    """SillyTavern's reasoning template (`prefix`, `suffix`, `separator`) and reasoning settings
    (`auto_parse`, `add_to_prompts` with `max_additions`) as an instruct preset's `reasoning:`."""
    if not isinstance(data, dict):
        raise PresetError(path, "a SillyTavern reasoning template must be a JSON object")
    fields: dict[str, Any] = {k: data[k] for k in ("prefix", "suffix", "separator") if k in data}
    if "auto_parse" in data:
        fields["parse"] = data["auto_parse"]
    if "add_to_prompts" in data:
        fields["add_to_prompt"] = (data.get("max_additions", 1) or 0) if data["add_to_prompts"] else 0
    try:
        return ReasoningFormat.model_validate(fields)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        raise PresetError(path, f"SillyTavern reasoning settings: {loc}: {err['msg']}") from exc


def _import_master(data: dict[str, Any], path: str | Path | None) -> BaseModel:
    """SillyTavern's Advanced Formatting "Master Export": its instruct preset, with the reasoning
    template and settings in the preset's `reasoning:` block."""
    instruct = import_sillytavern(data["instruct"], path, "instruct")
    assert isinstance(instruct, InstructTemplate)
    if isinstance(data.get("reasoning"), dict):
        instruct.reasoning = reasoning_from_sillytavern(data["reasoning"], path)
    return instruct


def import_sillytavern_file(path: str | Path, kind: str | None = None) -> BaseModel:
    """Read a SillyTavern preset JSON file."""
    p, raw = read_limited(path, error=PresetError, what="preset", limit=16 * 1024 * 1024)
    data = loads_json(decode_text(p, raw, error=PresetError, what="preset"), path=p, error=PresetError)
    return import_sillytavern(data, p, kind)


def export_sillytavern(preset: BaseModel, *, full: bool = False) -> dict[str, Any]:
    """The SillyTavern JSON object of a preset: the SillyTavern keys it sets (all with `full`),
    plus the keys kept from import. Family extras (BOS, system policy, ...) have no place there."""
    if isinstance(preset, SamplerSettings):
        return export_st_sampler(preset)
    kind = next((k for k, cls in _MODELS.items() if type(preset) is cls), None)
    if kind is None:
        raise PresetError(None, f"{type(preset).__name__} has no SillyTavern form")
    dumped = preset.model_dump(mode="json")
    out: dict[str, Any] = {}
    for key in ST_KEYS[kind]:
        if full or key in preset.model_fields_set or key == "name":
            if key == "post_history" and dumped[key] is None:
                continue
            out[key] = dumped[key]
    out.update(getattr(preset, "sillytavern_extra", {}) or {})
    return out


def save_sillytavern(preset: BaseModel, path: str | Path, *, full: bool = True) -> Path:
    """Write a preset as SillyTavern JSON, atomically."""
    p = Path(path)
    text = json.dumps(export_sillytavern(preset, full=full), indent=4, ensure_ascii=False) + "\n"
    write_text_atomic(p, text)
    return p
