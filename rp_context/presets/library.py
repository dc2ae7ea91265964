"""Finding presets by name: the user's data folder first, then the presets shipped with rp-context."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from ..errors import PresetError
from ..paths import bundled_dir, user_data_dir
from ..sampling import SamplerSettings
from .models import KIND_DIRS
from .sillytavern import import_sillytavern_file
from .yamlio import kind_of, load_preset_file

__all__ = [
    "PresetEntry",
    "preset_dirs",
    "list_presets",
    "find_preset",
    "load_preset",
    "read_preset",
    "load_sampler",
]


@dataclass(frozen=True)
class PresetEntry:
    """A preset file found on disk."""

    kind: str
    name: str
    path: Path
    origin: str  # "user" or "bundled"


def preset_dirs() -> list[tuple[str, Path]]:
    """Where presets are looked up, in order: the user's, then the shipped ones."""
    return [("user", user_data_dir() / "presets"), ("bundled", bundled_dir("presets"))]


def list_presets(kind: str | None = None) -> list[PresetEntry]:
    """Every preset file by kind and name; a user preset hides a shipped one of the same name."""
    seen: set[tuple[str, str]] = set()
    out: list[PresetEntry] = []
    for origin, root in preset_dirs():
        for k, sub in KIND_DIRS.items():
            if kind is not None and k != kind:
                continue
            folder = root / sub
            if not folder.is_dir():
                continue
            for path in sorted(folder.glob("*.yaml")):
                key = (k, path.stem)
                if key in seen:
                    continue
                seen.add(key)
                out.append(PresetEntry(k, path.stem, path, origin))
    return out


def find_preset(name: str, kind: str | None = None) -> PresetEntry:
    """The preset called `name` (file stem), optionally of one kind; PresetError if none or ambiguous."""
    matches = [e for e in list_presets(kind) if e.name == name]
    if not matches:
        what = f"{kind} preset" if kind else "preset"
        raise PresetError(None, f"no {what} named {name!r} (see `rp-context preset list`)")
    kinds = {e.kind for e in matches}
    if len(kinds) > 1:
        raise PresetError(
            None, f"{name!r} names presets of several kinds ({', '.join(sorted(kinds))}); say which"
        )
    return matches[0]


def read_preset(path: str | Path) -> BaseModel:
    """Load a preset file: our YAML, or SillyTavern JSON (imported on the fly)."""
    p = Path(path)
    if p.suffix.lower() == ".json":
        return import_sillytavern_file(p)
    return load_preset_file(p)


def load_preset(name_or_path: str | Path, kind: str | None = None) -> BaseModel:
    """A preset by file path or by name; with `kind`, the result must be of that kind."""
    text = str(name_or_path)
    p = Path(text).expanduser()
    looks_like_path = p.suffix.lower() in {".yaml", ".yml", ".json"} or "/" in text or p.exists()
    preset = read_preset(p) if looks_like_path else load_preset_file(find_preset(text, kind).path)
    if kind is not None and kind_of(preset) != kind:
        raise PresetError(
            p if looks_like_path else None, f"is a {kind_of(preset)} preset, expected {kind}"
        )
    return preset


def load_sampler(name_or_path: str | Path) -> SamplerSettings:
    """Sampler settings from a sampler preset name or file (YAML, or SillyTavern text-completion
    JSON); PresetError names the file, line and key of a bad one."""
    preset = load_preset(name_or_path, "sampler")
    assert isinstance(preset, SamplerSettings)
    return SamplerSettings.model_validate(preset.model_dump(exclude={"name", "description"}))
