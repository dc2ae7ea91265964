"""The context template's story string: the Handlebars subset SillyTavern uses, then the macro pass.

Supports `{{#if x}}…{{else}}…{{/if}}`, `{{#unless x}}…{{/unless}}` (nestable) and `{{param}}`;
any other `{{…}}` (such as `{{trim}}` or `{{char}}`) is left for `expand_macros`, as in SillyTavern.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

from .errors import TemplateError
from .macros import MacroContext, expand_macros

__all__ = ["render_handlebars", "render_story_string", "story_string_pieces"]

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


_OPEN, _CLOSE, _TRIM_MARK = "\ue000", "\ue001", "\ue002"
_PIECE = re.compile(_OPEN + r"(\d+)" + _CLOSE)
_VALUE_OPEN, _VALUE_CLOSE = "\ue003", "\ue004"
_VALUE_MARKS = re.compile(f"([{_VALUE_OPEN}{_VALUE_CLOSE}])")
_TOKEN_LIKE = re.compile(r"[<>\[\]|]")
"""Characters every chat-template special token has (`<|im_end|>`, `</s>`, `[INST]`): a value
without any cannot be parsed as one, so it stays in the template's text, as it always did."""
MACRO_VALUE = "macro"
"""The piece name of a value a macro put into the template's text (`{{char}}`, `{{user}}`...):
content, never parsed for special tokens, whatever the preset puts around it."""


def story_string_pieces(
    template: str,
    params: Mapping[str, str],
    ctx: MacroContext,
    *,
    instruct: bool = True,
    wrap: bool = True,
    traced: frozenset[str] | set[str] | None = None,
) -> list[tuple[str | None, str]]:
    """`render_story_string`, but as (param name or None for template text, text) pieces.

    Param values listed in `traced` (default: all) come out as their own pieces, so each can
    become a segment; the template's own text (labels, model tokens) has name None. The result
    joins to exactly `render_story_string(...)` when param values contain no macros.
    """
    names = list(params)
    traced_set = set(params) if traced is None else set(traced)
    # traced params come out as their own pieces; the others (`{{char}}`, `{{user}}`...) as
    # MACRO_VALUE pieces: either way content, never the template's own text
    marked = {
        k: (f"{_OPEN}{i}{_CLOSE}" if k in traced_set else f"{_VALUE_OPEN}{params[k]}{_VALUE_CLOSE}")
        if params[k] else params[k]
        for i, k in enumerate(names)
    }
    # `{{#if}}` tests the real values; the output carries markers in their place.
    text = _render_marked(template, params, marked)
    text = re.sub(r"\{\{trim\}\}", _TRIM_MARK, text, flags=re.IGNORECASE)
    text = expand_macros(text, dataclasses.replace(ctx, mark=(_VALUE_OPEN, _VALUE_CLOSE)))
    pieces: list[tuple[str | None, str]] = []
    pos = 0
    for m in _PIECE.finditer(text):
        if m.start() > pos:
            pieces.append((None, text[pos : m.start()]))
        name = names[int(m.group(1))]
        pieces.append((name, params[name]))
        pos = m.end()
    if pos < len(text):
        pieces.append((None, text[pos:]))
    pieces = _apply_trim(_split_values(pieces))
    # strip leading newlines across pieces
    while pieces and pieces[0][1].startswith("\n"):
        name, value = pieces[0]
        value = value.lstrip("\n")
        pieces = ([(name, value)] if value else []) + pieces[1:]
    pieces = [(n, t) for n, t in pieces if t]
    full = "".join(t for _, t in pieces)
    if full and not full.endswith("\n") and (not instruct or wrap):
        pieces.append((None, "\n"))
    return pieces


def _split_values(pieces: list[tuple[str | None, str]]) -> list[tuple[str | None, str]]:
    """Template text cut where macro values start and end: values become MACRO_VALUE pieces."""
    out: list[tuple[str | None, str]] = []
    for name, text in pieces:
        if _VALUE_OPEN not in text and _VALUE_CLOSE not in text:
            out.append((name, text))
            continue
        if name is not None:  # a param's own text: values inside it are content already
            out.append((name, _VALUE_MARKS.sub("", text)))
            continue
        depth, chunk = 0, []
        for token in _VALUE_MARKS.split(text):
            if token in (_VALUE_OPEN, _VALUE_CLOSE):
                before = depth
                depth = depth + 1 if token == _VALUE_OPEN else max(depth - 1, 0)
                if (before == 0) != (depth == 0) and chunk:
                    out.append((MACRO_VALUE if before else None, "".join(chunk)))
                    chunk = []
                continue
            chunk.append(token)
        if chunk:
            out.append((MACRO_VALUE if depth else None, "".join(chunk)))
    return _merge_plain(out)


def _merge_plain(pieces: list[tuple[str | None, str]]) -> list[tuple[str | None, str]]:
    """Values with nothing that could be a special token go back into the template's text, so
    ordinary names leave the story string's pieces (and their token counts) as they were."""
    out: list[tuple[str | None, str]] = []
    for name, text in pieces:
        if not text:
            continue
        if name == MACRO_VALUE and not _TOKEN_LIKE.search(text):
            name = None
        if name is None and out and out[-1][0] is None:
            out[-1] = (None, out[-1][1] + text)
        else:
            out.append((name, text))
    return out


def _render_marked(template: str, params: Mapping[str, str], marked: Mapping[str, str]) -> str:
    class _View(dict[str, str]):
        def get(self, key: str, default: str = "") -> str:  # type: ignore[override]
            return params.get(key, default)

    view = _View(marked)
    out, _, stack = _render(template, 0, view, None)
    if stack is not None:
        raise TemplateError(f"story string: unclosed {{{{#{stack}}}}} block")
    return out


def _apply_trim(pieces: list[tuple[str | None, str]]) -> list[tuple[str | None, str]]:
    """Remove each trim mark with the newline runs around it, across piece boundaries."""
    out: list[tuple[str | None, str]] = []
    for name, text in pieces:
        if _TRIM_MARK not in text:
            out.append((name, text))
            continue
        chunks = text.split(_TRIM_MARK)
        for j, chunk in enumerate(chunks):
            if j > 0:
                # strip newlines before the mark: at the end of what came before
                while out:
                    n, t = out[-1]
                    stripped = re.sub(r"(?:\r?\n)+$", "", t)
                    if stripped:
                        out[-1] = (n, stripped)
                        break
                    out.pop()
                chunk = re.sub(r"^(?:\r?\n)+", "", chunk)
                pending_strip = True
            else:
                pending_strip = False
            if chunk:
                out.append((name, chunk))
            elif pending_strip:
                out.append((name, ""))  # keeps the position; stripping continues below
        # a trim mark at the very end of this piece strips leading newlines of following pieces
        if text.endswith(_TRIM_MARK):
            out.append((None, _TRIM_MARK))
    # resolve trailing marks: strip leading newlines of the pieces after them
    result: list[tuple[str | None, str]] = []
    strip_next = False
    for name, text in out:
        if text == _TRIM_MARK:
            strip_next = True
            continue
        if strip_next:
            text = re.sub(r"^(?:\r?\n)+", "", text)
            if not text:
                continue
            strip_next = False
        result.append((name, text))
    return [(n, t) for n, t in result if t]
