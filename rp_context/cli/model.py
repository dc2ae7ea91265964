"""`rp-context model info [PATH]`: what a GGUF model is and which template family it speaks."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..modelinfo import model_info


def register(sub: Any) -> None:
    model = sub.add_parser("model", help="inspect GGUF models")
    msub = model.add_subparsers(dest="model_command", metavar="SUBCOMMAND", parser_class=type(model))
    msub.required = True
    info = msub.add_parser("info", help="architecture, context length, BOS/EOS and template family")
    info.add_argument("path", nargs="?", help="GGUF file (default: $RP_CONTEXT_MODEL or SmolLM2)")
    info.add_argument("--json", action="store_true", help="print a JSON object")
    info.add_argument(
        "--template", action="store_true", help="also print the embedded chat template"
    )
    info.set_defaults(func=_info)


def _info(args: argparse.Namespace) -> int:
    info = model_info(args.path)
    if args.json:
        print(json.dumps(info.model_dump(mode="json"), indent=2, ensure_ascii=False))
        return 0
    rows: list[tuple[str, str]] = [
        ("file", str(info.path)),
        ("name", info.name or "?"),
        ("architecture", info.architecture or "?"),
        ("trained context", str(info.context_length or "?")),
        ("BOS", f"{info.bos_token!r} (id {info.bos_id})" if info.bos_id is not None else "none"),
        ("EOS", f"{info.eos_token!r} (id {info.eos_id})" if info.eos_id is not None else "none"),
        ("adds BOS", "yes" if info.add_bos else "no"),
        ("chat template", "embedded" if info.has_chat_template else "none (no chat template)"),
        ("template", _template_line(info.family, info.family_source)),
        ("why", info.template_reason or "?"),
        ("llama.cpp builtin", info.llamacpp_template or "none (needs --jinja)"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    for warning in info.warnings:
        print(f"warning: {warning}")
    if args.template and info.chat_template:
        print()
        print(info.chat_template)
    return 0


def _template_line(family: str, source: str) -> str:
    if source == "chat_template":
        return f"{family} (family; renders the model's template exactly)"
    if source == "model_template":
        return "the model's own chat template"
    return f"{family} (guessed from {source.replace('_', ' ')})"
