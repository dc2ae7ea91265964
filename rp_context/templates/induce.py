"""Which instruct template renders a Jinja chat template byte for byte, and how we know.

A family is only ever chosen for a model when it renders the model's own template exactly on a
fixed set of probe conversations (system prompt, turns, padded and empty text, a mid-chat system
note, with and without the generation prompt). When none does, the template's own sequences are
read off placeholder renders (`induce_instruct`) and checked the same way, so the pipeline can
use the model's own template. Nothing here guesses: every answer has passed the probes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import TemplateError
from .model import InstructTemplate, Message

__all__ = ["PROBES", "Comparison", "ProbeRenders", "compare_render", "induce_instruct", "probe_renders", "writes_bos"]

_P = "\ue000{}\ue001"


def _conv(*pairs: tuple[str, str]) -> list[Message]:
    return [Message(r, c) for r, c in pairs]


PROBES: list[list[Message]] = [
    _conv(("system", "You are Wren, a ranger."), ("user", "Hello there."), ("assistant", "Hi. *nods*"),
          ("user", "Where to?")),
    _conv(("user", "Hello."), ("assistant", "Hi!"), ("user", "Again ✓ 日本語")),
    _conv(("system", "Story so far:\nrain.\n"), ("user", "  padded  "), ("assistant", "\n reply \n"),
          ("user", "next\n")),
    _conv(("system", "Rules."), ("user", "a"), ("assistant", "b"), ("system", "[Note: dusk]"),
          ("user", "c")),
    _conv(("system", "Rules."), ("user", "q"), ("assistant", "")),
    _conv(("user", "only one")),
    _conv(("system", "\n"), ("user", "blank system")),
    _conv(("user", "a"), ("assistant", "b"), ("system", "[Note: dusk]"), ("user", "c")),
]
"""Conversations a roleplay prompt is made of; a template that raises on one is not compared there."""


@dataclass(frozen=True)
class Comparison:
    """The outcome of rendering the probes both ways: equal, how many renders, the first difference."""

    equal: bool
    compared: int
    difference: str = ""


def _first_diff(a: str, b: str) -> str:
    i = next((k for k, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    return f"at character {i}: {a[max(0, i - 20) : i + 20]!r} vs {b[max(0, i - 20) : i + 20]!r}"


def writes_bos(jinja: Any) -> bool:
    """Whether the template writes `bos_token` itself (told apart from a BOS text that equals its
    first marker, as SmolLM2's `<|im_start|>`, by rendering with a stand-in BOS)."""
    if not jinja.bos_token:
        return False
    from .jinja import JinjaTemplate

    stand_in = JinjaTemplate(jinja.source, bos_token="\ue002", eos_token=jinja.eos_token, name=jinja.name)
    for conv in ([Message("user", "x")], [Message("system", "s"), Message("user", "x")]):
        try:
            return stand_in.render_text(conv, True).startswith("\ue002")
        except TemplateError:
            continue
    return False


@dataclass(frozen=True)
class ProbeRenders:
    """The Jinja template's renders of the probes (None where it refuses one) and its BOS habit."""

    renders: list[tuple[list[Message], bool, str | None]]
    bos: bool


def probe_renders(jinja: Any, probes: list[list[Message]] | None = None) -> ProbeRenders:
    """Render every probe with and without the generation prompt, once."""
    out: list[tuple[list[Message], bool, str | None]] = []
    for conv in probes or PROBES:
        for agp in (True, False):
            try:  # render, not render_text: a render that drops a message's text is a refusal
                out.append((conv, agp, jinja.render(conv, agp).text))
            except TemplateError:
                out.append((conv, agp, None))
    return ProbeRenders(out, writes_bos(jinja))


def compare_render(ours: InstructTemplate, jinja: Any, renders: ProbeRenders | None = None) -> Comparison:
    """Render every probe with `ours` and with the Jinja template; equal when every render where
    the Jinja template does not refuse the conversation is byte-identical (BOS as the template
    writes it)."""
    pr = renders or probe_renders(jinja)
    compared = 0
    for conv, agp, expected in pr.renders:
        if expected is None:
            continue
        try:
            got = ours.render(conv, agp, bos=pr.bos).text
        except TemplateError as exc:
            return Comparison(False, compared, f"{ours.name} refuses a conversation ({exc})")
        if got != expected:
            return Comparison(False, compared, _first_diff(got, expected))
        compared += 1
    if not compared:
        return Comparison(False, 0, "the template refuses every probe conversation")
    return Comparison(True, compared)


def _pieces(jinja: Any, roles: list[str], agp: bool, pad: str = "") -> list[str]:
    """Render placeholders for `roles` and cut the output at them: n+1 structure pieces."""
    msgs = [Message(r, pad + _P.format(i) + pad) for i, r in enumerate(roles)]
    text = jinja.render_text(msgs, agp)
    out: list[str] = []
    pos = 0
    for i in range(len(roles)):
        mark = _P.format(i)
        at = text.find(mark, pos)
        if at < 0:
            raise TemplateError(f"{jinja.name}: the template drops the text of a {roles[i]} message")
        out.append(text[pos:at])
        pos = at + len(mark)
    out.append(text[pos:])
    return out


def _minus_prefix(text: str, head: str, what: str) -> str:
    if not text.startswith(head):
        raise TemplateError(f"the {what} is not the same from turn to turn")
    return text[len(head) :]


def _trimmed_roles(jinja: Any) -> list[str]:
    roles = ["system", "user", "assistant", "user"]
    try:
        padded = _pieces(jinja, roles, False, pad=" \n")
    except TemplateError:
        return []
    out: list[str] = []
    for i, role in enumerate(roles[:3]):
        if not padded[i].endswith(" \n") and role not in out:
            out.append(role)
    return out


def induce_instruct(jinja: Any, renders: ProbeRenders | None = None) -> InstructTemplate:
    """An instruct template read off the Jinja template's own renders, verified on the probes.

    Raises TemplateError saying why when the template is not a sequence of role markers (it
    rewrites text, merges turns, or treats the first system turn unlike later ones).
    """
    name = getattr(jinja, "name", "jinja")
    try:
        full = _pieces(jinja, ["system", "user", "assistant", "user", "assistant"], False)
        gen_on = _pieces(jinja, ["system", "user"], True)
        gen_off = _pieces(jinja, ["system", "user"], False)
        nosys = _pieces(jinja, ["user", "assistant"], False)
    except TemplateError as exc:
        raise TemplateError(f"{name}: cannot read the template's role markers ({exc})") from exc
    bos = jinja.bos_token or ""
    head = full[0]
    with_bos = writes_bos(jinja)
    if with_bos and head.startswith(bos):
        head = head[len(bos) :]
    a_suffix = full[5]
    try:
        u_prefix = _minus_prefix(full[3], a_suffix, "assistant end-of-turn")
        u_suffix = gen_off[2]
        a_prefix = _minus_prefix(full[2], u_suffix, "user end-of-turn")
        if _minus_prefix(full[4], u_suffix, "user end-of-turn") != a_prefix:
            raise TemplateError("the assistant header is not the same from turn to turn")
        generation = _minus_prefix(gen_on[2], u_suffix, "generation prompt")
    except TemplateError as exc:
        raise TemplateError(f"{name}: {exc}") from exc
    if not full[1].endswith(u_prefix):
        raise TemplateError(f"{name}: the first user turn is written unlike the others")
    s_suffix = full[1][: len(full[1]) - len(u_prefix)]
    implicit: str | None = None
    first_user = nosys[0][len(bos) :] if with_bos and nosys[0].startswith(bos) else nosys[0]
    if first_user != u_prefix:
        inner = first_user[: len(first_user) - len(u_prefix)] if first_user.endswith(u_prefix) else None
        if inner is None or not (inner.startswith(head) and inner.endswith(s_suffix)):
            raise TemplateError(f"{name}: a chat without a system prompt starts unlike one with it")
        implicit = inner[len(head) : len(inner) - len(s_suffix)]
    t = InstructTemplate(
        name=name,
        description=f"read from the chat template {name}",
        input_sequence=u_prefix,
        input_suffix=u_suffix,
        output_sequence=a_prefix,
        output_suffix=a_suffix,
        system_sequence=head,
        system_suffix=s_suffix,
        stop_sequence=a_suffix.strip() or (jinja.eos_token or ""),
        wrap=False,
        macro=False,
        bos_token=bos or None,
        eos_token=jinja.eos_token or None,
        trim_content=_trimmed_roles(jinja),  # type: ignore[arg-type]
        generation_prompt=generation,
        implicit_system=implicit,
    )
    check = compare_render(t, jinja, renders)
    if not check.equal:
        raise TemplateError(f"{name}: the template's role markers do not render it exactly ({check.difference})")
    return t
