"""`rp-context preset import|export|list|show`: shared preset files and SillyTavern JSON."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from ..errors import PresetError

KINDS = ["instruct", "context", "sysprompt", "sampler", "bundle"]


def register(sub: Any) -> None:
    preset = sub.add_parser("preset", help="import, list and show presets")
    psub = preset.add_subparsers(dest="preset_command", metavar="SUBCOMMAND", parser_class=type(preset))
    psub.required = True

    imp = psub.add_parser("import", help="convert a SillyTavern preset JSON to a YAML preset")
    imp.add_argument(
        "file", help="SillyTavern instruct, context, system-prompt or text-completion sampler JSON"
    )
    imp.add_argument(
        "-o", "--output", help="YAML file to write ('-': stdout; default: your presets folder)"
    )
    imp.add_argument("--force", action="store_true", help="overwrite an existing file")
    imp.add_argument(
        "--reasoning",
        metavar="FILE",
        help="SillyTavern reasoning template JSON for the instruct preset's reasoning: block",
    )
    imp.set_defaults(func=_import)

    exp = psub.add_parser("export", help="write a preset as SillyTavern JSON")
    exp.add_argument("name", help="preset name or file")
    exp.add_argument("--kind", choices=KINDS[:4])
    exp.add_argument("-o", "--output", default="-", help="JSON file to write ('-': stdout)")
    exp.add_argument("--force", action="store_true", help="overwrite an existing file")
    exp.set_defaults(func=_export)

    lst = psub.add_parser("list", help="list the shipped and your own presets")
    lst.add_argument("--kind", choices=KINDS)
    lst.add_argument("--json", action="store_true", help="print a JSON list")
    lst.set_defaults(func=_list)

    show = psub.add_parser("show", help="print a preset as YAML")
    show.add_argument("name", help="preset name or file")
    show.add_argument("--kind", choices=KINDS)
    show.add_argument("--full", action="store_true", help="include every field, defaults too")
    show.set_defaults(func=_show)


def _slug(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[:80].strip("-") or "preset"  # a file name holds 255 bytes


def _refuse_existing(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise PresetError(path, "already exists (pass --force to overwrite)")


def _import(args: argparse.Namespace) -> int:
    from ..paths import user_data_dir
    from ..presets import KIND_DIRS, dump_preset, import_sillytavern_file, kind_of
    from ..presets.yamlio import save_preset
    from ..templates.model import InstructTemplate

    preset = import_sillytavern_file(args.file)
    if args.reasoning:
        if not isinstance(preset, InstructTemplate):
            raise PresetError(Path(args.file), "--reasoning goes with an instruct preset")
        preset.reasoning = import_sillytavern_file(args.reasoning, "reasoning")
    if args.output == "-":
        sys.stdout.write(dump_preset(preset))
        return 0
    kind = kind_of(preset)
    name = getattr(preset, "name", "") or Path(args.file).stem
    out = Path(args.output) if args.output else (
        user_data_dir() / "presets" / KIND_DIRS[kind] / f"{_slug(name)}.yaml"
    )
    _refuse_existing(out, args.force)
    save_preset(preset, out)
    print(f"{kind} preset {name!r} written to {out}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from ..presets import export_sillytavern, load_preset

    preset = load_preset(args.name, args.kind)
    text = json.dumps(export_sillytavern(preset, full=True), indent=4, ensure_ascii=False) + "\n"
    if args.output == "-":
        sys.stdout.write(text)
        return 0
    from ..atomic import write_text_atomic

    out = Path(args.output)
    _refuse_existing(out, args.force)
    write_text_atomic(out, text)
    print(f"written to {out}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from ..presets import list_presets

    entries = list_presets(args.kind)
    if args.json:
        rows = [{"kind": e.kind, "name": e.name, "origin": e.origin, "path": str(e.path)} for e in entries]
        print(json.dumps(rows, indent=2))
        return 0
    for e in entries:
        print(f"{e.kind:<10} {e.name:<24} {e.origin}")
    return 0


def _show(args: argparse.Namespace) -> int:
    from ..presets import dump_preset, load_preset

    sys.stdout.write(dump_preset(load_preset(args.name, args.kind), full=args.full))
    return 0
