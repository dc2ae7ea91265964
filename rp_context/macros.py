"""SillyTavern-style `{{macros}}`, evaluated in SillyTavern 1.12.6's order, with cache-stable randomness.

`{{random}}`, `{{roll}}` and the time macros are *frozen*: the first evaluation stores its value in
a caller-owned dict (kept in the message's `extra`, or the chat's metadata for card text), and
later evaluations reuse it, so the prompt does not change under llama.cpp's cache.
`{{pick}}` is stable per chat by construction (seeded from the chat id and the text).
"""

from __future__ import annotations

import hashlib
import random as _random
import re
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

__all__ = ["MacroContext", "expand_macros", "CARD_MACROS"]

CARD_MACROS = (
    "description",
    "personality",
    "scenario",
    "persona",
    "mesExamples",
    "charPrompt",
    "charJailbreak",
    "charVersion",
    "char_version",
)
"""Card-field macros, replaced before the names so `{{user}}` inside a description still works."""


@dataclass
class MacroContext:
    """Everything a macro can read. `frozen` collects values that must not change between turns."""

    user: str = "User"
    char: str = "Character"
    group: str = ""
    """Comma-joined member names in a group chat; empty one-on-one."""
    fields: Mapping[str, str] = field(default_factory=dict)
    """Card macros (see CARD_MACROS) and any extra `{{name}}` values (systemPrompt, chatStart, ...)."""
    original: str | None = None
    """What `{{original}}` expands to (first occurrence only), or None when not applicable."""
    chat_id: str = ""
    """Seeds `{{pick}}` so its choice is stable for the whole chat."""
    now: Callable[[], datetime] = field(default=lambda: datetime.now().astimezone())
    frozen: MutableMapping[str, str] | None = None
    """Where frozen values live; None evaluates freshly every time (nothing stored)."""
    model: str = ""
    seed: str = ""
    """When set, `{{random}}` and `{{roll}}` draw from a generator seeded by it and the macro, so
    the same chat renders the same text even before its frozen values are saved."""
    warnings: list[str] | None = None
    """Where a macro whose arguments are out of range says so (it is left as text); None: silent."""
    mark: tuple[str, str] | None = None
    """When set, every value a macro puts in (a name, a field, a roll...) comes out between these
    two markers, so structural text (the story string) can tokenize the values as content."""
    memo: MutableMapping[tuple[object, ...], str] | None = None
    """Caller-owned store of expansions that read only the text, names, fields, `original`, model
    and markers (no roll, random, pick or time macro ran): the same key expands the same way."""


def _v(ctx: MacroContext, value: str) -> str:
    """A macro's value, between the context's markers when it has them."""
    return f"{ctx.mark[0]}{value}{ctx.mark[1]}" if ctx.mark is not None and value else value


_COMMENT = re.compile(r"\{\{//[\s\S]*?\}\}")
_TRIM = re.compile(r"(?:\r?\n)*\{\{trim\}\}(?:\r?\n)*", re.IGNORECASE)
_ROLL = re.compile(r"\{\{roll[ :]([^}]+)\}\}", re.IGNORECASE)
_RANDOM = re.compile(r"\{\{random\s?::?([^}]+)\}\}", re.IGNORECASE)
_PICK = re.compile(r"\{\{pick\s?::?([^}]+)\}\}", re.IGNORECASE)
_BANNED = re.compile(r'\{\{banned "[^"]*"\}\}', re.IGNORECASE)
_TIME_UTC = re.compile(r"\{\{time_UTC([-+]\d+)\}\}", re.IGNORECASE)
_DATETIMEFORMAT = re.compile(r"\{\{datetimeformat +([^}]*)\}\}", re.IGNORECASE)
_DICE = re.compile(r"^\s*(\d*)d(\d+)\s*([-+]\s*\d+)?\s*$", re.IGNORECASE)


def _word(name: str) -> re.Pattern[str]:
    return re.compile(r"\{\{" + re.escape(name) + r"\}\}", re.IGNORECASE)


def expand_macros(text: str, ctx: MacroContext) -> str:
    """Expand every macro in `text` in SillyTavern's order; unknown `{{macros}}` stay as they are.
    With `ctx.memo`, an expansion that ran no frozen or seeded macro is stored and reused."""
    if not text or ctx.memo is None:
        return _expand(text, ctx, None)
    key = (text, ctx.user, ctx.char, ctx.group, tuple(ctx.fields.items()), ctx.original, ctx.model, ctx.mark)
    hit = ctx.memo.get(key)
    if hit is not None:
        return hit
    counter: list[_Counter] = []
    out = _expand(text, ctx, counter)
    if not counter or not counter[0].seen:  # no roll, random, pick or time macro: pure
        if len(ctx.memo) > 4096:
            ctx.memo.clear()
        ctx.memo[key] = out
    return out


def _expand(text: str, ctx: MacroContext, used: list[_Counter] | None) -> str:
    """`expand_macros`' work; `used` receives the occurrence counter (its `seen` is empty when
    no macro read the clock, the frozen values or a seed)."""
    if not text:
        return text
    text = (
        text.replace("<USER>", _v(ctx, ctx.user))
        .replace("<BOT>", _v(ctx, ctx.char))
        .replace("<CHAR>", _v(ctx, ctx.char))
        .replace("<CHARIFNOTGROUP>", _v(ctx, ctx.group or ctx.char))
        .replace("<GROUP>", _v(ctx, ctx.group or ctx.char))
    )
    if "{{" not in text:
        return text
    counter = _Counter(text)
    if used is not None:
        used.append(counter)
    text = _ROLL.sub(
        lambda m: _v(ctx, _frozen(ctx, counter, "roll", m.group(0), lambda: _roll(m.group(1), _rng(ctx, counter, m.group(0))))),
        text,
    )
    text = re.sub(r"\{\{newline\}\}", "\n", text, flags=re.IGNORECASE)
    text = _TRIM.sub("", text)
    text = re.sub(r"\{\{noop\}\}", "", text, flags=re.IGNORECASE)
    if ctx.original is not None:
        original = [ctx.original]

        def _orig(_: re.Match[str]) -> str:
            value, original[0] = original[0], ""
            return _v(ctx, value)

        text = _word("original").sub(_orig, text)
    for name in CARD_MACROS:
        if name in ctx.fields:
            value = _v(ctx, ctx.fields[name])
            text = _word(name).sub(lambda _m, v=value: v, text)
    for name, value in ctx.fields.items():
        if name not in CARD_MACROS:
            marked = _v(ctx, value)
            text = _word(name).sub(lambda _m, v=marked: v, text)
    names = {
        "user": ctx.user,
        "char": ctx.char,
        "group": ctx.group or ctx.char,
        "charIfNotGroup": ctx.group or ctx.char,
        "model": ctx.model,
    }
    for name, value in names.items():
        marked = _v(ctx, value)
        text = _word(name).sub(lambda _m, v=marked: v, text)
    text = _COMMENT.sub("", text)
    text = _expand_time(text, ctx, counter)
    text = _BANNED.sub("", text)
    text = _RANDOM.sub(
        lambda m: _v(ctx, _frozen(
            ctx, counter, "random", m.group(0), lambda: _random_choice(m.group(1), _rng(ctx, counter, m.group(0)))
        )),
        text,
    )
    text = _PICK.sub(lambda m: _v(ctx, _pick(m, ctx, counter)), text)
    return text


class _Counter:
    """Numbers repeated occurrences of the same macro so each keeps its own frozen value."""

    def __init__(self, source: str) -> None:
        self.seen: dict[str, int] = {}
        self.source = hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()[:16]

    def key(self, kind: str, raw: str) -> str:
        n = self.seen.get(raw, 0)
        self.seen[raw] = n + 1
        return f"{kind}:{raw}#{n}"


class _OutOfRange(Exception):
    """A macro's numbers are out of range: the macro stays as text (never a crash)."""


MAX_ROLL_SIDES = 10**12
MAX_HOURS_OFFSET = 24 * 366 * 100
"""`{{time_UTC+N}}` accepts a century of hours either way; beyond that the macro stays as text."""


def _frozen(ctx: MacroContext, counter: _Counter, kind: str, raw: str, make: Callable[[], str]) -> str:
    key = counter.key(kind, raw)
    if ctx.frozen is not None and key in ctx.frozen:
        return ctx.frozen[key]
    try:
        value = make()
    except _OutOfRange as exc:
        if ctx.warnings is not None:
            shown = raw if len(raw) <= 40 else raw[:37] + "..."
            note = f"the macro {shown} was left as text: {exc}"
            if note not in ctx.warnings:
                ctx.warnings.append(note)
        return raw
    if ctx.frozen is not None:
        ctx.frozen[key] = value
    return value


def _split_options(body: str) -> list[str]:
    if "::" in body:
        return body.split("::")
    parts = re.split(r"(?<!\\),", body)
    return [p.replace("\\,", ",").strip() for p in parts]


def _rng(ctx: MacroContext, counter: _Counter, raw: str) -> _random.Random:
    """Seeded by the context's seed, the text and the occurrence; fresh randomness without a seed."""
    if not ctx.seed:
        return _random.SystemRandom()
    n = counter.seen.get(raw, 1) - 1
    digest = hashlib.sha256(f"{ctx.seed}\0{counter.source}\0{raw}\0{n}".encode()).digest()
    return _random.Random(int.from_bytes(digest[:8], "big"))


def _random_choice(body: str, rng: _random.Random) -> str:
    options = _split_options(body)
    return rng.choice(options) if options else ""


def _pick(match: re.Match[str], ctx: MacroContext, counter: _Counter) -> str:
    options = _split_options(match.group(1))
    if not options:
        return ""
    occurrence = counter.key("pick", match.group(0))
    seed = hashlib.sha256(f"{ctx.chat_id}\0{counter.source}\0{occurrence}".encode()).digest()
    return options[int.from_bytes(seed[:8], "big") % len(options)]


def _roll(spec: str, rng: _random.Random) -> str:
    spec = spec.strip()
    if spec.isdigit():
        spec = f"1d{spec}"
    m = _DICE.match(spec)
    if not m:
        return ""
    digits = [m.group(1) or "1", m.group(2), (m.group(3) or "0").replace(" ", "")]
    if any(len(d.lstrip("+-")) > 13 for d in digits):
        raise _OutOfRange("a number in the dice roll is too large")
    count, sides, bonus = (int(d) for d in digits)
    if sides > MAX_ROLL_SIDES:
        raise _OutOfRange(f"a die has more than {MAX_ROLL_SIDES:,} sides")
    if count < 1 or sides < 1 or count > 1000:
        return ""
    return str(sum(rng.randint(1, sides) for _ in range(count)) + bonus)


_MOMENT_TOKENS = [
    ("YYYY", "%Y"),
    ("YY", "%y"),
    ("MMMM", "%B"),
    ("MMM", "%b"),
    ("MM", "%m"),
    ("M", "{month}"),
    ("DD", "%d"),
    ("Do", "{dayord}"),
    ("D", "{day}"),
    ("dddd", "%A"),
    ("ddd", "%a"),
    ("HH", "%H"),
    ("H", "{hour24}"),
    ("hh", "%I"),
    ("h", "{hour12}"),
    ("mm", "%M"),
    ("ss", "%S"),
    ("A", "%p"),
    ("a", "{ampm}"),
]
_MOMENT_RE = re.compile("|".join(re.escape(t) for t, _ in _MOMENT_TOKENS) + r"|\[[^\]]*\]")


def format_moment(moment: datetime, fmt: str) -> str:
    """Format a datetime with the moment.js tokens SillyTavern's time macros use."""
    table = dict(_MOMENT_TOKENS)

    def one(m: re.Match[str]) -> str:
        tok = m.group(0)
        if tok.startswith("["):
            return tok[1:-1]
        spec = table[tok]
        day = moment.day
        suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
        return spec.format(
            month=moment.month,
            day=day,
            dayord=f"{day}{suffix}",
            hour24=moment.hour,
            hour12=(moment.hour % 12) or 12,
            ampm=moment.strftime("%p").lower(),
        ) if spec.startswith("{") else moment.strftime(spec)

    return _MOMENT_RE.sub(one, fmt)


def _hours(offset: str) -> timedelta:
    if len(offset.lstrip("+-")) > 7 or abs(int(offset)) > MAX_HOURS_OFFSET:
        raise _OutOfRange(f"the offset is more than {MAX_HOURS_OFFSET:,} hours")
    return timedelta(hours=int(offset))


def _expand_time(text: str, ctx: MacroContext, counter: _Counter) -> str:
    if "{{" not in text:
        return text
    simple = {
        "time": "h:mm A",
        "date": "MMMM D, YYYY",
        "weekday": "dddd",
        "isotime": "HH:mm",
        "isodate": "YYYY-MM-DD",
    }
    for name, fmt in simple.items():
        pattern = _word(name)
        text = pattern.sub(
            lambda m, f=fmt: _v(ctx, _frozen(ctx, counter, "time", m.group(0), lambda: format_moment(ctx.now(), f))),
            text,
        )
    text = _DATETIMEFORMAT.sub(
        lambda m: _v(ctx, _frozen(
            ctx, counter, "time", m.group(0), lambda: format_moment(ctx.now(), m.group(1).strip())
        )),
        text,
    )
    text = _TIME_UTC.sub(
        lambda m: _v(ctx, _frozen(
            ctx,
            counter,
            "time",
            m.group(0),
            lambda: format_moment(ctx.now().astimezone(UTC) + _hours(m.group(1)), "h:mm A"),
        )),
        text,
    )
    return text
