"""SillyTavern's text-completion sampler presets (`presets/textgen/*.json`) in and out.

The keys SillyTavern sends to llama.cpp become our fields (`temp` -> temperature, `rep_pen` ->
repeat_penalty, `nsigma` -> top_n_sigma, `samplers` -> sampler_order, ...); the rest (other
backends' settings) are kept in `sillytavern_extra`, so an export gives back every key with its
value. Values keep SillyTavern's meaning for llama.cpp (SillyTavern sends them as they are).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import PresetError
from ..sampling import LogitBias, SamplerSettings
from .models import SamplerPreset

__all__ = ["is_st_sampler", "import_st_sampler", "export_st_sampler", "ST_SAMPLER_KEYS"]

ST_SAMPLER_KEYS: dict[str, str] = {
    "top_p": "top_p",
    "top_k": "top_k",
    "min_p": "min_p",
    "typical_p": "typical_p",
    "rep_pen": "repeat_penalty",
    "rep_pen_range": "repeat_last_n",
    "freq_pen": "frequency_penalty",
    "presence_pen": "presence_penalty",
    "dynatemp_exponent": "dynatemp_exponent",
    "dry_multiplier": "dry_multiplier",
    "dry_base": "dry_base",
    "dry_allowed_length": "dry_allowed_length",
    "dry_penalty_last_n": "dry_penalty_last_n",
    "xtc_threshold": "xtc_threshold",
    "xtc_probability": "xtc_probability",
    "nsigma": "top_n_sigma",
    "min_keep": "min_keep",
    "mirostat_mode": "mirostat",
    "mirostat_tau": "mirostat_tau",
    "mirostat_eta": "mirostat_eta",
    "samplers": "sampler_order",
}
"""SillyTavern key -> our field, for the keys that map one to one."""

_SPECIAL = {"temp", "dynatemp", "min_temp", "max_temp", "dry_sequence_breakers", "banned_tokens",
            "logit_bias", "seed"}


def is_st_sampler(data: dict[str, Any]) -> bool:
    """Whether a JSON object looks like a SillyTavern text-completion sampler preset."""
    return "temp" in data and ("rep_pen" in data or "samplers" in data or "min_p" in data)


def _breakers(value: Any) -> list[str]:
    """SillyTavern stores DRY breakers as a JSON array in a string (or comma-separated)."""
    if isinstance(value, list):
        return [str(v) for v in value]
    text = str(value)
    try:
        parsed = json.loads(text)
    except ValueError:
        return [s for s in text.split(",") if s]
    return [str(v) for v in parsed] if isinstance(parsed, list) else [text]


def import_st_sampler(data: dict[str, Any], path: str | Path | None = None) -> SamplerPreset:
    """Our sampler preset from a SillyTavern text-completion preset (parsed JSON)."""
    fields: dict[str, Any] = {ST_SAMPLER_KEYS[k]: v for k, v in data.items() if k in ST_SAMPLER_KEYS}
    extra = {k: v for k, v in data.items() if k not in ST_SAMPLER_KEYS and k not in _SPECIAL}
    for k in ("dynatemp", "min_temp", "max_temp"):
        if k in data:
            extra[k] = data[k]
    if data.get("dynatemp") and "min_temp" in data and "max_temp" in data:
        lo, hi = float(data["min_temp"]), float(data["max_temp"])
        fields["temperature"] = (lo + hi) / 2
        fields["dynatemp_range"] = (hi - lo) / 2
        if "temp" in data:
            extra["temp"] = data["temp"]
    elif "temp" in data:
        fields["temperature"] = data["temp"]
    if "dry_sequence_breakers" in data:
        fields["dry_sequence_breakers"] = _breakers(data["dry_sequence_breakers"])
    if "banned_tokens" in data:
        fields["banned_tokens"] = [ln for ln in str(data["banned_tokens"] or "").split("\n") if ln]
    if "logit_bias" in data:
        fields["logit_bias"] = [
            LogitBias(text=str(e.get("text", "")), value=float(e.get("value", 0)), id=e.get("id"))
            for e in (data["logit_bias"] or [])
            if isinstance(e, dict)
        ]
    if "seed" in data:
        seed = data["seed"]
        fields["seed"] = None if seed is None or int(seed) < 0 else int(seed)
    if extra:
        fields["sillytavern_extra"] = extra
    if path is not None:
        fields["name"] = Path(path).stem
    try:
        return SamplerPreset.model_validate(fields)
    except ValidationError as exc:
        err = exc.errors()[0]
        ours = str(err["loc"][0]) if err["loc"] else ""
        st = next((k for k, v in ST_SAMPLER_KEYS.items() if v == ours), ours)
        raise PresetError(path, f"SillyTavern sampler preset: {st}: {err['msg']}") from exc


def _num(v: Any) -> Any:
    """Numbers as JavaScript writes them: 1, not 1.0; derived values without float noise."""
    if isinstance(v, float):
        v = float(f"{v:.12g}")
        return int(v) if v.is_integer() else v
    return v


def export_st_sampler(s: SamplerSettings) -> dict[str, Any]:
    """The SillyTavern text-completion preset of `s`: the keys it maps, plus the kept ones.

    An imported preset (one with kept keys) gives back exactly the keys it came with; our own
    presets give every key SillyTavern takes for llama.cpp.
    """
    from_st = bool(s.sillytavern_extra)

    def want(field: str) -> bool:
        return not from_st or field in s.model_fields_set

    out: dict[str, Any] = dict(s.sillytavern_extra)
    dumped = s.model_dump(mode="json")
    for st, ours in ST_SAMPLER_KEYS.items():
        if want(ours):
            out[st] = _num(dumped[ours])
    if s.dynatemp_range > 0:
        out["dynatemp"] = True
        out["min_temp"] = _num(s.temperature - s.dynatemp_range)
        out["max_temp"] = _num(s.temperature + s.dynatemp_range)
        out.setdefault("temp", _num(s.temperature))
    else:
        if want("temperature"):
            out["temp"] = _num(s.temperature)
        if "dynatemp" in out or not from_st:
            out["dynatemp"] = False
    if want("dry_sequence_breakers"):
        out["dry_sequence_breakers"] = json.dumps(s.dry_sequence_breakers, ensure_ascii=False)
    if want("banned_tokens") or s.banned_strings:
        lines = list(s.banned_tokens) + [f'"{p}"' for p in s.banned_strings]
        out["banned_tokens"] = "\n".join(lines)
    if want("logit_bias"):
        out["logit_bias"] = [
            {"id": e.id or str(uuid.uuid5(uuid.NAMESPACE_OID, f"{i}:{e.text}")), "text": e.text,
             "value": _num(e.value)}
            for i, e in enumerate(s.logit_bias)
        ]
    if s.seed is not None or "seed" in s.model_fields_set:
        out["seed"] = -1 if s.seed is None else s.seed
    return out
