"""`rp-context card show|validate|convert`: look into, check and convert cards and their kin.

`show` and `validate` take any file rp-context reads about characters: a card (JSON, PNG,
CHARX, YAML), a lorebook, a persona, a group roster or a chat. `convert` turns a card into
another card format. Warnings (repairs made while reading) go to stderr; a broken file is one
line on stderr and exit code 2, and nothing is written.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

from ..errors import CardError, RPContextError
from ..userfiles import detect_kind


def register(sub: Any) -> None:
    card = sub.add_parser("card", help="show, validate and convert character cards")
    csub = card.add_subparsers(dest="card_command", metavar="SUBCOMMAND", parser_class=type(card))
    csub.required = True

    show = csub.add_parser("show", help="what a card (or lorebook, persona, roster, chat) holds")
    show.add_argument("file", help="card (.json/.png/.charx/.yaml), lorebook, persona, roster or chat")
    show.add_argument("--json", action="store_true", help="print the normalised card as V3 JSON")
    show.add_argument("--full", action="store_true", help="print text fields in full")
    show.set_defaults(func=_show)

    validate = csub.add_parser("validate", help="check files load; list the repairs they need")
    validate.add_argument("files", nargs="+", metavar="FILE")
    validate.add_argument("--strict", action="store_true", help="exit 1 when a file needs repairs")
    validate.set_defaults(func=_validate)

    convert = csub.add_parser("convert", help="convert a card to JSON, PNG, CHARX or YAML")
    convert.add_argument("file", help="the card to convert")
    convert.add_argument("--to", choices=("json", "png", "charx", "yaml"), help="output format")
    convert.add_argument("-o", "--output", help="output file (default: FILE with the new extension)")
    convert.add_argument("--image", help="avatar image for PNG/CHARX output (PNG, JPEG, WebP...)")
    convert.add_argument("--spec", choices=("v2", "v3"), default="v3", help="JSON spec (default v3)")
    convert.add_argument("--force", action="store_true", help="overwrite the default output file")
    convert.set_defaults(func=_convert)


def _load(path: Path) -> tuple[str, Any]:
    kind = detect_kind(path)
    if kind == "card":
        from ..cards import load_card

        return kind, load_card(path)
    if kind == "lorebook":
        from ..cards.lorebook import load_lorebook

        return kind, load_lorebook(path)
    if kind == "persona":
        from ..cards.persona import load_persona

        return kind, load_persona(path)
    if kind == "roster":
        from ..cards.roster import load_roster

        return kind, load_roster(path)
    from ..chat import load_chat

    return kind, load_chat(path)


def _warn(warnings: list[str]) -> None:
    for msg in warnings:
        print(f"warning: {msg}", file=sys.stderr)


# -------------------------------------------------------------------------------- commands


def _show(args: argparse.Namespace) -> int:
    path = Path(args.file)
    kind, loaded = _load(path)
    if args.json:
        if kind == "card":
            from ..cards import card_to_dict

            doc: Any = card_to_dict(loaded.card)
        elif kind == "lorebook":
            doc = loaded.book.to_dict()
        elif kind == "persona":
            doc = loaded.persona.to_dict()
        elif kind == "roster":
            doc = loaded.roster.to_dict()
        else:
            from ..chat import chat_to_text

            sys.stdout.write(chat_to_text(loaded.chat))
            _warn(loaded.warnings)
            return 0
        print(json.dumps(doc, ensure_ascii=False, indent=2))
        _warn(loaded.warnings)
        return 0
    printer = {"card": _show_card, "lorebook": _show_lorebook, "persona": _show_persona,
               "roster": _show_roster, "chat": _show_chat}[kind]
    printer(loaded, full=args.full)
    _warn(loaded.warnings)
    return 0


def _rows(rows: list[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


def _text_block(title: str, text: str, full: bool) -> None:
    if not text.strip():
        return
    body = text.replace("\r\n", "\n").strip()
    if not full and len(body) > 400:
        body = body[:400].rstrip() + f" … ({len(text):,} characters; --full shows all)"
    print(f"\n{title}")
    for line in body.split("\n"):
        print(textwrap.indent(line, "  ") if line else "")


def _show_card(loaded: Any, *, full: bool) -> None:
    from ..cards.png import image_size

    card = loaded.card
    d = card.data
    source = loaded.format.upper() + (f", spec {loaded.spec.upper()}" if loaded.format != "yaml" else "")
    if loaded.chunk:
        source += f", '{loaded.chunk}' chunk"
    rows = [
        ("name", d.name + (f" (nickname {d.nickname})" if d.nickname else "")),
        ("file", f"{loaded.path} ({source})"),
    ]
    if d.creator or d.character_version:
        rows.append(("creator", f"{d.creator or '?'}, version {d.character_version or '?'}"))
    if d.tags:
        rows.append(("tags", ", ".join(d.tags)))
    examples = d.mes_example.count("<START>")
    rows.append((
        "greetings",
        f"1 first message, {len(d.alternate_greetings)} alternate, {len(d.group_only_greetings)} group-only",
    ))
    if d.mes_example.strip():
        rows.append(("examples", f"{examples} <START> block(s), {len(d.mes_example):,} characters"))
    book = d.character_book
    if book is not None:
        enabled = sum(1 for e in book.entries if e.enabled)
        rows.append(("lorebook", f"{book.name or '(unnamed)'}: {len(book.entries)} entries, {enabled} enabled"))
    if d.extensions:
        rows.append(("extensions", ", ".join(d.extensions)))
    if d.assets:
        rows.append(("assets", ", ".join(f"{a.type}:{a.name}" for a in d.assets)))
    if loaded.image is not None:
        size = image_size(loaded.image)
        rows.append(("image", f"{size[0]}×{size[1]}, {len(loaded.image):,} bytes" if size else f"{len(loaded.image):,} bytes (unreadable)"))
    if loaded.assets:
        rows.append(("CHARX files", f"{len(loaded.assets)} besides card.json"))
    if card.outer:
        rows.append(("other keys", ", ".join(card.outer)))
    _rows(rows)
    for title, text in (
        ("Description", d.description),
        ("Personality", d.personality),
        ("Scenario", d.scenario),
        ("First message", d.first_mes),
        ("Example dialogue", d.mes_example),
        ("System prompt", d.system_prompt),
        ("Post-history instructions", d.post_history_instructions),
        ("Creator notes", d.creator_notes),
    ):
        _text_block(title, text, full)


def _show_lorebook(loaded: Any, *, full: bool) -> None:
    book = loaded.book
    _rows([
        ("lorebook", book.name or "(unnamed)"),
        ("file", f"{loaded.path} ({loaded.format.replace('_', ' ')})"),
        ("entries", f"{len(book.entries)} ({sum(e.enabled for e in book.entries)} enabled, "
                    f"{sum(bool(e.constant) for e in book.entries)} constant)"),
    ])
    for entry in book.entries:
        label = entry.comment or entry.name or ", ".join(entry.keys[:4]) or "(no keys)"
        state = "" if entry.enabled else " [disabled]"
        keys = ", ".join(entry.keys)
        print(f"\n- {label}{state}\n  keys: {keys or '(none)'}")
        text = entry.content.replace("\r\n", "\n").strip()
        if not full and len(text) > 200:
            text = text[:200].rstrip() + " …"
        print(textwrap.indent(text, "  "))


def _show_persona(loaded: Any, *, full: bool) -> None:
    p = loaded.persona
    where = p.position + (f" (depth {p.depth}, as {p.role})" if p.position == "at_depth" else "")
    _rows([("persona", p.name), ("file", f"{loaded.path} ({loaded.format})"), ("position", where)])
    _text_block("Description", p.description, full)


def _show_roster(loaded: Any, *, full: bool) -> None:
    r = loaded.roster
    muted = set(r.muted)
    rows = [
        ("group", r.name),
        ("file", f"{loaded.path} ({loaded.format})"),
        ("members", ", ".join(m + (" (muted)" if m in muted else "") for m in r.members) or "(none)"),
        ("who speaks", r.activation),
        ("cards", r.generation_mode.replace("_", " ")),
    ]
    if r.join_prefix or r.join_suffix:
        rows += [("join prefix", repr(r.join_prefix)), ("join suffix", repr(r.join_suffix))]
    _rows(rows)


def _show_chat(loaded: Any, *, full: bool) -> None:
    chat = loaded.chat
    _rows([
        ("chat", f"{chat.user_name} with {chat.character_name or '(a group)'}"),
        ("file", str(loaded.path)),
        ("messages", f"{len(chat.messages)}" + (f", {len(chat.unreadable)} unreadable line(s)" if chat.unreadable else "")),
    ])
    shown = chat.messages if full else chat.messages[-6:]
    if len(shown) < len(chat.messages):
        print(f"\n… {len(chat.messages) - len(shown)} earlier messages (--full shows all)")
    for m in shown:
        text = m.text.replace("\r\n", "\n").strip()
        if not full and len(text) > 300:
            text = text[:300].rstrip() + " …"
        tags = " [hidden]" if m.hidden else ""
        if m.swipes and len(m.swipes) > 1:
            tags += f" [swipe {(m.swipe_id or 0) + 1}/{len(m.swipes)}]"
        print(f"\n{m.name or m.role} (#{m.id}){tags}")
        print(textwrap.indent(text, "  "))


def _validate(args: argparse.Namespace) -> int:
    failed = repaired = 0
    for name in args.files:
        path = Path(name)
        try:
            kind, loaded = _load(path)
        except RPContextError as exc:
            print(f"rp-context: error: {exc}", file=sys.stderr)
            failed += 1
            continue
        what = kind
        if kind == "card":
            what = f"card, {loaded.format.upper()}" + (f", spec {loaded.spec.upper()}" if loaded.format != "yaml" else "")
        note = f"; {len(loaded.warnings)} repair(s)" if loaded.warnings else ""
        print(f"{path}: ok ({what}{note})")
        for msg in loaded.warnings:
            print(f"  warning: {msg}")
        repaired += bool(loaded.warnings)
    if failed:
        return 2
    return 1 if args.strict and repaired else 0


def _convert(args: argparse.Namespace) -> int:
    from ..cards import load_card, save_card
    from ..cards.io import _SUFFIXES

    src = Path(args.file)
    fmt = args.to
    if fmt is None and args.output:
        fmt = _SUFFIXES.get(Path(args.output).suffix.lower())
        if fmt is None:
            raise CardError(Path(args.output), "cannot tell the output format from its extension; pass --to")
    if fmt is None:
        raise CardError(src, "name the output format with --to (json, png, charx, yaml) or -o FILE")
    if detect_kind(src) != "card":
        raise CardError(src, f"is a {detect_kind(src)}, not a character card; convert handles cards")
    image = None
    if args.image:
        image_path = Path(args.image)
        try:
            image = image_path.read_bytes()
        except OSError as exc:
            raise CardError(image_path, f"cannot read the image ({exc.strerror or exc})") from exc
        from ..cards.png import to_png

        to_png(image, image_path)  # refuse an unreadable image before writing anything
    loaded = load_card(src)
    if args.output:
        out = Path(args.output)
    else:
        out = src.with_name(src.name.split(".", 1)[0] + "." + fmt)
        if out.exists() and not args.force:
            raise CardError(out, "already exists; pass -o FILE or --force")
    warnings = save_card(loaded, out, format=fmt, image=image, spec=args.spec)
    _warn(loaded.warnings + warnings)
    print(f"wrote {out} ({fmt.upper()})")
    return 0
