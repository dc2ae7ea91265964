"""The template doctor: the known ways a model's own chat template goes wrong, checked by rendering.

Each check renders the template (never reads its source for meaning) and says `ok`, `problem`
(the model sees something other than what it was trained on, or rp-context cannot send the text),
`note` (worth knowing, changes nothing) or `skipped` (needs the model's vocabulary). Used by
`rp-context template check`.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

from .errors import TemplateError
from .templates.model import InstructTemplate, Message

__all__ = ["Finding", "TemplateReport", "check_template", "check_model"]

Status = Literal["ok", "problem", "note", "skipped"]

# Marker-looking text a template writes: <|x|>, <x_y>, [INST], <｜x｜> (DeepSeek's full-width bars).
_MARKER = re.compile(r"<\|[^|<>\s]{1,40}\|>|<｜[^｜]{1,40}｜>|</?[a-z][a-z0-9_]{0,30}>|\[/?[A-Z][A-Z_]{1,30}\]")
_CONV = [
    Message("system", "You are Wren."),
    Message("user", "Hello there."),
    Message("assistant", "Hi. *nods*"),
    Message("user", "Where to?"),
]
_REPLY = "North, to the pass."


@dataclass
class Finding:
    """One check's outcome."""

    check: str
    status: Status
    message: str


@dataclass
class TemplateReport:
    """Everything the doctor found about one template, and which template rp-context uses."""

    template: str
    uses: str
    reason: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.status == "problem"]

    def as_dict(self) -> dict[str, Any]:
        return {"template": self.template, "uses": self.uses, "reason": self.reason,
                "problems": len(self.problems), "findings": [asdict(f) for f in self.findings]}


def _render(jinja: Any, conv: list[Message], agp: bool) -> str | None:
    try:
        return jinja.render(conv, agp).text
    except TemplateError:
        return None


def _conv_for(jinja: Any) -> list[Message]:
    """The test chat, without its system prompt when the template refuses one."""
    return _CONV if _render(jinja, _CONV, True) is not None else _CONV[1:]


def _special_text(tok: Any, text: str) -> set[str]:
    """Marker-looking pieces of `text` that are one special token of the vocabulary."""
    out: set[str] = set()
    for m in set(_MARKER.findall(text)):
        ids = tok.tokenize(m, special=True)
        if len(ids) == 1 and ids[0] in tok.special_ids:
            out.add(m)
    return out


def _check_bos(jinja: Any, tok: Any) -> Finding:
    from .templates.induce import writes_bos

    if tok is None:
        return Finding("double-bos", "skipped", "needs the model's vocabulary (--model)")
    if writes_bos(jinja) and tok.add_bos:
        return Finding("double-bos", "problem", f"the template writes BOS ({jinja.bos_token!r}) and the "
                       "tokenizer adds it too: a frontend that tokenizes the render as is sends two "
                       "(rp-context sends one)")
    return Finding("double-bos", "ok", "BOS comes once")


def _check_end_of_turn(jinja: Any, tok: Any) -> Finding:
    text = _render(jinja, [*_conv_for(jinja), Message("assistant", _REPLY)], False)
    if text is None or _REPLY not in text:
        return Finding("end-of-turn", "skipped", "the template refuses a chat that ends with a reply")
    after = text[text.rindex(_REPLY) + len(_REPLY) :]
    if tok is None:
        if jinja.eos_token and jinja.eos_token in after:
            return Finding("end-of-turn", "ok", f"replies end with {jinja.eos_token!r}")
        return Finding("end-of-turn", "skipped", "needs the model's vocabulary (--model) to tell")
    eog = tok.eog_ids or frozenset({tok.eos_id})
    ids = tok.tokenize(after, special=True)
    ends = [tok.token_text(t) for t in ids if t in eog]
    if ends:
        return Finding("end-of-turn", "ok", f"replies end with {ends[0]!r}, an end-of-generation token")
    written = sorted(_special_text(tok, after) | set(_MARKER.findall(after)))
    if written:
        return Finding("end-of-turn", "problem", f"after a reply the template writes {', '.join(written)}, "
                       "none of which ends generation for this model: replies would run on")
    return Finding("end-of-turn", "problem", "nothing marks the end of a reply: the model never sees "
                   "where its turns end")


def _ends_turn(tail: str, jinja: Any, tok: Any) -> bool:
    """Whether `tail` holds an end-of-generation token (or, without a vocabulary, the EOS text)."""
    if tok is None:
        return bool(jinja.eos_token) and jinja.eos_token in tail
    eog = tok.eog_ids or frozenset({tok.eos_id})
    return any(t in eog for t in tok.tokenize(tail, special=True))


def _check_generation_prompt(jinja: Any, tok: Any) -> Finding:
    conv = _conv_for(jinja)
    on, off = _render(jinja, conv, True), _render(jinja, conv, False)
    if on is None or off is None:
        return Finding("generation-prompt", "skipped", "the template refuses the test chat")
    if on != off:
        return Finding("generation-prompt", "ok", f"the reply starts after {on[len(off):]!r}"
                       if on.startswith(off) else "add_generation_prompt changes the render")
    tail = off[off.rindex("Where to?") + len("Where to?") :]
    if _ends_turn(tail, jinja, tok):
        return Finding("generation-prompt", "problem", f"no generation prompt: the render ends with the "
                       f"user's end-of-turn ({tail!r}) and the model has to open its own turn")
    return Finding("generation-prompt", "note", "add_generation_prompt changes nothing: the user's "
                   f"turn ends with {tail!r}, after which the reply starts")


def _check_special_tokens(jinja: Any, tok: Any) -> Finding:
    if tok is None:
        return Finding("special-tokens", "skipped", "needs the model's vocabulary (--model)")
    try:
        rendered = jinja.render(_conv_for(jinja), True)
    except TemplateError:
        return Finding("special-tokens", "skipped", "the template refuses the test chat")
    structure = "".join(p.text for p in rendered.parts if p.special)
    missing = sorted(m for m in set(_MARKER.findall(structure)) if m not in _special_text(tok, m))
    if missing:
        return Finding("special-tokens", "problem", f"the template writes {', '.join(missing)}, which the "
                       "vocabulary has no token for: the model reads it as plain text pieces")
    return Finding("special-tokens", "ok", "every marker the template writes is a token of the vocabulary")


def _check_system(jinja: Any) -> Finding:
    conv = [Message("system", "SYSTEM-TEXT"), Message("user", "hi")]
    try:
        text = jinja.render(conv, True).text
    except TemplateError as exc:
        if "drops message" in str(exc):
            return Finding("system-role", "problem", "the template silently drops system messages "
                           "(the character card would never reach the model)")
        return Finding("system-role", "note", f"no system role (the template refuses one: {exc}); use a "
                       "family that merges system text into the user turn")
    between = text[text.find("SYSTEM-TEXT") + len("SYSTEM-TEXT") : text.rfind("hi")]
    if between.strip():
        return Finding("system-role", "ok", "system messages have their own turn")
    return Finding("system-role", "note", "system text is written into the user's turn (no system turn)")


def _check_prefix_stable(jinja: Any) -> Finding:
    conv = _conv_for(jinja)
    turn1 = _render(jinja, conv, True)
    turn2 = _render(jinja, [*conv, Message("assistant", _REPLY), Message("user", "Lead on.")], True)
    if turn1 is None or turn2 is None:
        return Finding("prefix-stable", "skipped", "the template refuses the test chats")
    if turn2.startswith(turn1 + _REPLY):
        return Finding("prefix-stable", "ok", "each turn's prompt extends the last one (llama.cpp reuses "
                       "its cache)")
    at = next((i for i, (a, b) in enumerate(zip(turn1, turn2, strict=False)) if a != b), min(len(turn1), len(turn2)))
    if turn2.startswith(turn1):
        return Finding("prefix-stable", "note", "the reply is written back differently from how it was "
                       f"generated (from character {at}); llama.cpp re-reads from there")
    return Finding("prefix-stable", "problem", f"the earlier turns render differently once a turn is added "
                   f"(from character {at}: {turn1[at : at + 30]!r} becomes {turn2[at : at + 30]!r}): "
                   "llama.cpp re-evaluates the prompt from there every turn")


def _check_content_kept(jinja: Any) -> Finding:
    from .templates.induce import PROBES

    for conv in [_CONV, *PROBES]:
        for agp in (True, False):
            try:
                jinja.render(conv, agp)
            except TemplateError as exc:
                if "drops message" in str(exc):
                    return Finding("content-kept", "problem", str(exc))
    return Finding("content-kept", "ok", "every message's text is in the render" +
                   (" (content passed as a list of parts)" if jinja.typed_content else ""))


def _check_thinking(jinja: Any) -> Finding:
    conv = _conv_for(jinja)
    on, off = _render(jinja, conv, True), _render(jinja, conv, False)
    header = on[len(off) :] if on and off and on.startswith(off) else ""
    if "<think>" in header and "</think>" not in header:
        return Finding("thinking", "note", "thinking is on by default: the generation prompt opens <think>")
    if "enable_thinking" in jinja.source:
        return Finding("thinking", "note", "the template has an enable_thinking switch; off by default")
    return Finding("thinking", "ok", "no thinking block opened by the template")


def _check_date(jinja: Any) -> Finding:
    from .templates.jinja import JinjaTemplate

    days = [JinjaTemplate(jinja.source, bos_token=jinja.bos_token, eos_token=jinja.eos_token,
                          name=jinja.name, now=datetime(2026, 1, d)) for d in (1, 2)]
    a, b = (_render(t, _conv_for(jinja), True) for t in days)
    if a is not None and a != b:
        return Finding("date", "note", "the render changes with today's date: the cached prompt is "
                       "re-read once a day")
    return Finding("date", "ok", "the render does not depend on the date")


def check_template(jinja: Any, tokenizer: Any = None) -> TemplateReport:
    """Run every check on a Jinja template (with the model's vocabulary when there is one)."""
    from .detect import detect_family

    guess = detect_family(jinja.source, bos_token=jinja.bos_token or None,
                          eos_token=jinja.eos_token or None, template_name=jinja.name)
    if guess.source == "chat_template":
        uses = f"family {guess.family}"
    elif isinstance(guess.template, InstructTemplate):
        uses = "the model's own template, as role markers read from it"
    elif guess.source == "model_template":
        uses = "the model's own template, rendered as Jinja"
    else:
        uses = f"a guess: {guess.family}"
    report = TemplateReport(jinja.name, uses, guess.reason)
    unknown = [t for t in ("bos_token", "eos_token") if t in jinja.source and not getattr(jinja, t)]
    if unknown:
        report.findings.append(Finding("token-text", "note", f"the template writes {' and '.join(unknown)}, "
                                       "whose text comes from a model (--model): rendered empty here"))
    if guess.warning:
        report.findings.append(Finding("template", "problem", guess.warning))
    report.findings += [
        _check_bos(jinja, tokenizer),
        _check_end_of_turn(jinja, tokenizer),
        _check_generation_prompt(jinja, tokenizer),
        _check_special_tokens(jinja, tokenizer),
        _check_system(jinja),
        _check_prefix_stable(jinja),
        _check_content_kept(jinja),
        _check_thinking(jinja),
        _check_date(jinja),
    ]
    return report


def check_model(path: Any = None, tokenizer: Any = None) -> TemplateReport:
    """Check the chat template embedded in a GGUF (default: the default model) with its vocabulary."""
    from .detect import detect_family
    from .models import resolve_model
    from .templates.jinja import JinjaTemplate
    from .tokens import LlamaTokenizer

    tok = tokenizer or LlamaTokenizer(resolve_model(path))
    meta = tok.metadata()
    if not meta.get("tokenizer.chat_template"):
        guess = detect_family(None, meta.get("general.architecture"), meta.get("general.name"))
        report = TemplateReport(f"gguf:{tok.path.name}", f"a guess: {guess.family}", guess.reason)
        report.findings.append(Finding("template", "problem", guess.warning or "no chat template"))
        return report
    return check_template(JinjaTemplate.from_gguf(tok.path, tok), tok)
