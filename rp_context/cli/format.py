"""`rp-context format`: render an OpenAI-style message list with a template; print exactly the prompt."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any

from ..errors import ChatFileError
from ..safeload import loads_json

MESSAGES_SIZE_LIMIT = 64 * 1024 * 1024


def register(sub: Any) -> None:
    p = sub.add_parser(
        "format",
        help="render a message list with a chat template and print the prompt",
        description="Render MESSAGES.json ([{role, content, name?}, ...]) and print exactly the prompt "
        "text. --template takes a family (chatml, llama3, mistral-v7, gemma, ...), 'auto' (detect "
        "from the model), gguf:MODEL.gguf (the model's own Jinja template), a .jinja file, or a "
        "preset file (YAML or SillyTavern instruct JSON).",
    )
    p.add_argument("messages", help="JSON file with a list of {role, content, name?} objects ('-': stdin)")
    p.add_argument("--template", "-t", default="chatml", help="template (default: chatml)")
    p.add_argument(
        "--no-generation-prompt", action="store_true", help="do not end with the assistant header"
    )
    p.add_argument("--ids", action="store_true", help="print the token ids as JSON instead of text")
    p.add_argument("--model", help="GGUF model for --ids and --template auto (default: SmolLM2)")
    p.add_argument(
        "--bos", action="store_true", help="write the template's BOS text (llama.cpp never does)"
    )
    p.set_defaults(func=_format)


def _read_messages(path: str) -> list[Any]:
    try:
        if path == "-":
            raw = sys.stdin.read()
        else:
            p = Path(path)
            if p.stat().st_size > MESSAGES_SIZE_LIMIT:
                raise ChatFileError(p, "messages file is larger than 64 MiB")
            raw = p.read_text(encoding="utf-8")
        data = loads_json(raw, path=path, error=ChatFileError)
    except FileNotFoundError as exc:
        raise ChatFileError(path, "messages file not found") from exc
    except IsADirectoryError as exc:
        raise ChatFileError(path, "is a directory, not a messages file") from exc
    except UnicodeDecodeError as exc:
        raise ChatFileError(path, "messages file is not UTF-8") from exc
    if isinstance(data, dict) and isinstance(data.get("messages"), list):
        data = data["messages"]
    if not isinstance(data, list):
        raise ChatFileError(path, "expected a JSON list of {role, content} objects")
    for i, m in enumerate(data):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            raise ChatFileError(path, f"message {i} needs a string 'role' and a string 'content'")
    return data


def _format(args: argparse.Namespace) -> int:
    from ..modeltemplates import resolve_template
    from ..templates.model import InstructTemplate

    messages = _read_messages(args.messages)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        template = resolve_template(args.template, model=args.model)
    for w in caught:
        print(f"rp-context: warning: {w.message}", file=sys.stderr)
    agp = not args.no_generation_prompt
    if isinstance(template, InstructTemplate):
        rendered = template.render(messages, agp, bos=args.bos or args.ids)
    else:
        rendered = template.render(messages, agp)
    if args.ids:
        from ..models import resolve_model
        from ..tokens import LlamaTokenizer

        tok = LlamaTokenizer(resolve_model(args.model))
        print(json.dumps(rendered.token_ids(tok)))
        return 0
    sys.stdout.write(rendered.text)
    sys.stdout.flush()
    return 0
