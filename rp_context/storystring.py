"""The context template's story string: the Handlebars subset SillyTavern uses, then the macro pass.

Supports `{{#if x}}…{{else}}…{{/if}}`, `{{#unless x}}…{{/unless}}` (nestable) and `{{param}}`;
any other `{{…}}` (such as `{{trim}}` or `{{char}}`) is left for `expand_macros`, as in SillyTavern.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from .errors import TemplateError
from .macros import MacroContext, expand_macros

__all__ = ["render_handlebars", "render_story_string"]

_TOKEN = re.compile(r"\{\{\s*(#if|#unless|else|/if|/unless)\s*([\w.]*)\s*\}\}|\{\{\s*([\w.]+)\s*\}\}")


def render_handlebars(template: str, params: Mapping[str, str]) -> str:
    """Render the block helpers and known params; leave unknown `{{names}}` untouched."""
    out, pos, stack = _render(template, 0, params, None)
    if stack is not None:
        raise TemplateError(f"story string: unclosed {{{{#{stack}}}}} block")
    return out


def _render(
    tpl: str, pos: int, params: Mapping[str, str], closing: str | None
) -> tuple[str, int, str | None]:
    """Render from `pos` until the matching close tag; return (text, position after, open block)."""
    parts: list[str] = []
    while True:
        m = _TOKEN.search(tpl, pos)
        if m is None:
            parts.append(tpl[pos:])
            return "".join(parts), len(tpl), closing
        parts.append(tpl[pos : m.start()])
        pos = m.end()
        block, arg, name = m.group(1), m.group(2), m.group(3)
        if name is not None:
            parts.append(str(params[name]) if name in params else m.group(0))
            continue
        if block in ("#if", "#unless"):
            kind = block[1:]
            truthy = bool(params.get(arg, ""))
            if kind == "unless":
                truthy = not truthy
            then_text, pos, end = _render(tpl, pos, params, kind)
            else_text = ""
            if end == "else":
                else_text, pos, end = _render(tpl, pos, params, kind)
            if end != "closed":
                raise TemplateError(f"story string: unclosed {{{{#{kind} {arg}}}}} block")
            parts.append(then_text if truthy else else_text)
            continue
        if block == "else":
            if closing is None:
                raise TemplateError("story string: {{else}} outside a block")
            return "".join(parts), pos, "else"
        # a closing tag
        if closing is None or block[1:] != closing:
            raise TemplateError(f"story string: unexpected {{{{{block}}}}}")
        return "".join(parts), pos, "closed"


def render_story_string(
    template: str,
    params: Mapping[str, str],
    ctx: MacroContext,
    *,
    instruct: bool = True,
    wrap: bool = True,
) -> str:
    """SillyTavern 1.12.6 `renderStoryString`: blocks, macros, strip leading newlines, end with one."""
    text = render_handlebars(template, params)
    text = expand_macros(text, ctx)
    text = re.sub(r"^\n+", "", text)
    if text and not text.endswith("\n") and (not instruct or wrap):
        text += "\n"
    return text
