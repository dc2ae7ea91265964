"""`rp-context template check MODEL.gguf|FILE.jinja [--json]`: the template doctor.

Exit code 1 when a finding changes what the model sees (double BOS, no end-of-turn, dropped text,
unknown special tokens, an unstable prefix, ...), 0 when the template is clean, 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

EXIT_PROBLEM = 1


def register(sub: Any) -> None:
    tpl = sub.add_parser("template", help="check chat templates")
    tsub = tpl.add_subparsers(dest="template_command", metavar="SUBCOMMAND", parser_class=type(tpl))
    tsub.required = True
    check = tsub.add_parser(
        "check",
        help="report the known bugs of a model's own chat template",
        description="Render a GGUF's chat template (or a .jinja file) and report double BOS, a missing "
        "or wrong end-of-turn, no generation prompt, special tokens the vocabulary lacks, system role "
        "support, prefix stability (llama.cpp's cache), dropped content, thinking on by default, and "
        "which template rp-context uses. Exit code 1 when a problem changes what the model sees.",
    )
    check.add_argument("target", nargs="?", help="MODEL.gguf, gguf:MODEL or FILE.jinja (default: the default model)")
    check.add_argument("--model", help="GGUF whose vocabulary (and BOS/EOS) to check a .jinja file against")
    check.add_argument("--json", action="store_true", help="print a JSON object")
    check.set_defaults(func=_check)


def _report(args: argparse.Namespace) -> Any:
    from ..doctor import check_model, check_template
    from ..models import resolve_model
    from ..templates.jinja import JinjaTemplate
    from ..tokens import LlamaTokenizer

    target = args.target or ""
    if target.lower().endswith(".jinja"):
        tok = LlamaTokenizer(resolve_model(args.model)) if args.model else None
        bos = tok.token_text(tok.bos_id) if tok and tok.bos_id is not None else None
        eos = tok.token_text(tok.eos_id) if tok and tok.eos_id is not None else None
        return check_template(JinjaTemplate.from_file(target, bos_token=bos, eos_token=eos), tok)
    path = target[len("gguf:") :] if target.startswith("gguf:") else target
    return check_model(path or None)


def _check(args: argparse.Namespace) -> int:
    report = _report(args)
    if args.json:
        print(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        print(f"template  {report.template}")
        print(f"uses      {report.uses}")
        print(f"why       {report.reason}")
        for f in report.findings:
            print(f"{f.status:<8}  {f.check}: {f.message}")
        n = len(report.problems)
        print("clean: nothing changes what the model sees" if not n else f"{n} problem(s)")
    return EXIT_PROBLEM if report.problems else 0
