"""A model's own Jinja chat template, rendered the way Hugging Face transformers renders it.

The environment matches `transformers` (sandboxed, trim_blocks, lstrip_blocks, loopcontrols,
`tojson` without ASCII escaping, `raise_exception`, `strftime_now`). To keep content from ever
being parsed as special tokens, the template is rendered a second time with each message's
content replaced by a unique placeholder: the text between placeholders is the structure.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ..errors import TemplateError
from ..tokens import TextPart
from .model import Message, as_messages
from .render import RenderedPrompt

__all__ = ["JinjaTemplate"]

_PH = re.compile("\ue000(\\d+)\ue001")


class _GenerationTag(Extension):
    """transformers' `{% generation %}...{% endgeneration %}` marks assistant text; render its body."""

    tags = {"generation"}

    def parse(self, parser: Any) -> list[nodes.Node]:
        next(parser.stream)
        return list(parser.parse_statements(("name:endgeneration",), drop_needle=True))


def _tojson(x: Any, ensure_ascii: bool = False, indent: Any = None, separators: Any = None, sort_keys: bool = False) -> str:
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _raise(message: str) -> None:
    raise TemplateError(message)


class JinjaTemplate:
    """A Jinja chat template (from a GGUF's `tokenizer.chat_template` or a `.jinja` file)."""

    def __init__(
        self,
        source: str,
        *,
        bos_token: str | None = None,
        eos_token: str | None = None,
        name: str = "jinja",
        now: datetime | None = None,
        extra_context: dict[str, Any] | None = None,
    ) -> None:
        self.source = source
        self.bos_token = bos_token or ""
        self.eos_token = eos_token or ""
        self.name = name
        self.now = now
        self.extra_context = dict(extra_context or {})

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: Any) -> JinjaTemplate:
        p = Path(path)
        try:
            source = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise TemplateError(f"{p}: cannot read template ({exc})") from exc
        kwargs.setdefault("name", p.stem)
        return cls(source, **kwargs)

    @classmethod
    def from_gguf(cls, path: str | Path, tokenizer: Any = None) -> JinjaTemplate:
        """The template embedded in a GGUF with its BOS/EOS token text; TemplateError if none."""
        from ..tokens import LlamaTokenizer

        tok = tokenizer or LlamaTokenizer(path)
        source = tok.metadata().get("tokenizer.chat_template")
        if not source:
            raise TemplateError(f"{tok.path}: the model has no embedded chat template")
        bos = tok.token_text(tok.bos_id) if tok.bos_id is not None else None
        eos = tok.token_text(tok.eos_id) if tok.eos_id is not None else None
        return cls(source, bos_token=bos, eos_token=eos, name=f"gguf:{tok.path.name}")

    @cached_property
    def _compiled(self) -> jinja2.Template:
        env = ImmutableSandboxedEnvironment(
            trim_blocks=True,
            lstrip_blocks=True,
            extensions=[_GenerationTag, "jinja2.ext.loopcontrols"],
        )
        env.filters["tojson"] = _tojson
        env.globals["raise_exception"] = _raise
        env.globals["strftime_now"] = self._strftime_now
        try:
            return env.from_string(self.source)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(f"{self.name}: Jinja syntax error at line {exc.lineno}: {exc.message}") from exc

    def check_syntax(self) -> None:
        """Raise TemplateError when the source is not valid Jinja."""
        self._compiled  # noqa: B018 - compiling is the check

    def _check_kept(self, skeleton: str, msgs: list[Message]) -> None:
        """Raise TemplateError when the render lacks a message's text (the template dropped it)."""
        found = {int(x) for x in _PH.findall(skeleton)}
        for i, m in enumerate(msgs):
            if m.content.strip() and i not in found:
                preview = m.content.strip().replace("\n", " ")
                preview = preview[:40] + ("…" if len(preview) > 40 else "")
                raise TemplateError(
                    f"{self.name}: the template drops message {i} ({m.role}: {preview!r}); "
                    "its text would not reach the model"
                )

    def _strftime_now(self, fmt: str) -> str:
        return (self.now or datetime.now()).strftime(fmt)

    @cached_property
    def typed_content(self) -> bool:
        """Whether the template reads content only as a list of parts (`[{"type": "text", ...}]`,
        SmolVLM, Qwen2-VL): string content vanishes from its render, typed content does not. The
        content is then passed as parts, as llama.cpp does for such templates."""
        mark = "\ue000probe\ue001"
        for conv in ([{"role": "user", "content": mark}],
                     [{"role": "system", "content": "s"}, {"role": "user", "content": mark}]):
            try:
                if mark in self._render(conv, True):
                    return False
                typed = [{**m, "content": [{"type": "text", "text": m["content"]}]} for m in conv]
                return mark in self._render(typed, True)
            except TemplateError:
                continue
        return False

    def _dicts(self, msgs: list[Message]) -> list[dict[str, Any]]:
        return [_as_dict(m, typed=self.typed_content) for m in msgs]

    def render_text(self, messages: Iterable[Any], add_generation_prompt: bool = True) -> str:
        """The exact string transformers' `apply_chat_template(tokenize=False)` would produce
        (content passed as parts to templates that only read parts)."""
        return self._render(self._dicts(as_messages(messages)), add_generation_prompt)

    def _render(self, msgs: list[dict[str, Any]], add_generation_prompt: bool) -> str:
        ctx = dict(self.extra_context)
        ctx.update(
            messages=msgs,
            add_generation_prompt=add_generation_prompt,
            bos_token=self.bos_token,
            eos_token=self.eos_token,
        )
        try:
            return self._compiled.render(**ctx)
        except TemplateError:
            raise
        except jinja2.TemplateError as exc:
            raise TemplateError(f"{self.name}: {exc}") from exc
        except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
            raise TemplateError(f"{self.name}: the template failed ({type(exc).__name__}: {exc})") from exc

    def render(
        self, messages: Iterable[Any], add_generation_prompt: bool = True, **_: Any
    ) -> RenderedPrompt:
        """Render to parts: template text special, message content plain, each traced to its message."""
        msgs = as_messages(messages)
        text = self._render(self._dicts(msgs), add_generation_prompt)
        probe = [
            Message(m.role, f"\ue000{i}\ue001" if m.content else "", m.name) for i, m in enumerate(msgs)
        ]
        skeleton = self._render(self._dicts(probe), add_generation_prompt)
        self._check_kept(skeleton, msgs)
        parts = _align(text, skeleton, msgs)
        if parts is None:
            raise TemplateError(
                f"{self.name}: cannot tell message content from template text in this render"
            )
        if self.bos_token and parts and parts[0].special and parts[0].text.startswith(self.bos_token):
            first = parts[0]
            rest = first.text[len(self.bos_token) :]
            parts[0:1] = [TextPart(self.bos_token, True, None)] + ([TextPart(rest, True, first.source)] if rest else [])
        return RenderedPrompt(parts=parts, stop=[s for s in (self.eos_token,) if s], bos_token=self.bos_token or None)


def _as_dict(m: Message, typed: bool = False) -> dict[str, Any]:
    content: Any = [{"type": "text", "text": m.content}] if typed else m.content
    d: dict[str, Any] = {"role": m.role, "content": content}
    if m.name:
        d["name"] = m.name
    return d


def _align(text: str, skeleton: str, msgs: list[Message]) -> list[TextPart] | None:
    """Map the real render onto the placeholder render; None if they do not line up."""
    pieces: list[tuple[str, int | None]] = []  # (structure text, following message index)
    pos = 0
    for m in _PH.finditer(skeleton):
        pieces.append((skeleton[pos : m.start()], int(m.group(1))))
        pos = m.end()
    pieces.append((skeleton[pos:], None))
    parts: list[TextPart] = []
    at = 0
    for k, (struct, idx) in enumerate(pieces):
        if not text.startswith(struct, at):
            return None
        if struct:
            parts.append(TextPart(struct, True, idx if idx is not None else None))
        at += len(struct)
        if idx is None:
            break
        content = msgs[idx].content
        following = pieces[k + 1][0]
        for cand in dict.fromkeys((content, content.strip(), content.rstrip(), content.lstrip())):
            end = at + len(cand)
            if text.startswith(cand, at) and text.startswith(following, end):
                # the structure after must also fit; a later mismatch fails the whole alignment
                parts.append(TextPart(cand, False, idx))
                at = end
                break
        else:
            return None
    if at != len(text):
        return None
    return [p for p in parts if p.text]
