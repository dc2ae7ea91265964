"""A model's own Jinja chat template, rendered the way Hugging Face transformers renders it.

The environment matches `transformers` (sandboxed, trim_blocks, lstrip_blocks, loopcontrols,
`tojson` without ASCII escaping, `raise_exception`, `strftime_now`). To keep content from ever
being parsed as special tokens, the template is rendered a second time with each message's
content replaced by a unique placeholder: the text between placeholders is the structure.
"""

from __future__ import annotations

import functools
import json
import re
import threading
from collections.abc import Iterable
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment, safe_range
from jinja2.utils import Namespace

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


# --- limits: a hostile template (a GGUF's, a .jinja file) errors out, never hangs ----------------
MAX_OUTPUT_CHARS = 8 * 1024 * 1024
"""Longest render, and longest string or list a template may build."""
MAX_STEPS = 200_000
"""Loop iterations plus calls (filters, methods, macros) in one render."""
MAX_INT_BITS = 4096
"""Largest integer a template may compute (`9**(9**10)` is refused, not folded for minutes)."""
MAX_DEPTH = 200
"""Deepest macro recursion."""


class _Limit(TemplateError):
    """A template ran past one of the limits above."""


class _Budget(threading.local):
    steps = 0
    depth = 0


def _size_of(value: Any) -> int | None:
    return len(value) if isinstance(value, (str, list, tuple)) else None


def _check_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse `*`, `**` and `+` whose result would be too large, before computing it."""
    ints = all(isinstance(v, int) for v in (left, right))
    if operator == "**" and ints:
        bits = max(abs(left), 1).bit_length() * max(right, 0)
        if bits > MAX_INT_BITS:
            raise _Limit(f"the template computes {left} ** {right}, past {MAX_INT_BITS}-bit integers")
    elif operator == "*" and ints:
        if abs(left).bit_length() + abs(right).bit_length() > MAX_INT_BITS:
            raise _Limit(f"the template computes an integer past {MAX_INT_BITS} bits")
    elif operator == "*":
        size = _size_of(left) if isinstance(right, int) else _size_of(right) if isinstance(left, int) else None
        times = right if isinstance(right, int) else left
        if size is not None and size * max(times, 0) > MAX_OUTPUT_CHARS:
            raise _Limit(f"the template builds a value past {MAX_OUTPUT_CHARS:,} characters")
    elif operator == "+":
        a, b = _size_of(left), _size_of(right)
        if a is not None and b is not None and a + b > MAX_OUTPUT_CHARS:
            raise _Limit(f"the template builds a value past {MAX_OUTPUT_CHARS:,} characters")
        if ints and max(abs(left), abs(right)).bit_length() > MAX_INT_BITS:
            raise _Limit(f"the template computes an integer past {MAX_INT_BITS} bits")


class _LimitedSandbox(ImmutableSandboxedEnvironment):
    """transformers' sandbox plus limits on work, sizes, integers and recursion. Intercepting
    `*`, `**` and `+` also stops Jinja from folding `9**(9**10)` while it compiles."""

    intercepted_binops = frozenset({"*", "**", "+"})

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.budget = _Budget()
        self.globals["range"] = self._range
        self.globals["namespace"] = _LimitedNamespace
        self.filters = {name: self._guarded(f) for name, f in self.filters.items()}

    def _guarded(self, f: Any) -> Any:
        """A filter that counts as a step and refuses huge arguments (`'a'|center(10**9)`)."""

        @functools.wraps(f)  # keeps Jinja's pass_context/pass_environment marks
        def guarded(*args: Any, **kwargs: Any) -> Any:
            self.tick()
            self.check_args(args, kwargs)
            return f(*args, **kwargs)

        return guarded

    @staticmethod
    def check_args(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        for arg in (*args, *kwargs.values()):
            if isinstance(arg, int) and not isinstance(arg, bool) and abs(arg) > MAX_OUTPUT_CHARS:
                raise _Limit(f"the template passes the number {arg} to a call; too large")
            if (_size_of(arg) or 0) > MAX_OUTPUT_CHARS:
                raise _Limit(f"the template passes a value past {MAX_OUTPUT_CHARS:,} characters")

    def tick(self, n: int = 1) -> None:
        self.budget.steps += n
        if self.budget.steps > MAX_STEPS:
            raise _Limit(f"the template ran past {MAX_STEPS:,} steps (loops and calls)")

    def _range(self, *args: int) -> Any:
        for arg in args:
            if isinstance(arg, int) and abs(arg) > MAX_OUTPUT_CHARS:
                raise _Limit(f"range({arg}) is too long")
        for item in safe_range(*args):
            self.tick()
            yield item

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _check_binop(operator, left, right)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        __self.tick()
        __self.check_args(args, kwargs)
        budget = __self.budget
        budget.depth += 1
        try:
            if budget.depth > MAX_DEPTH:
                raise _Limit(f"the template recurses deeper than {MAX_DEPTH} calls")
            return super().call(__context, __obj, *args, **kwargs)
        finally:
            budget.depth -= 1


class _LimitedNamespace(Namespace):
    """`namespace()` whose attributes cannot hold a value past the size limit (doubling loops)."""

    def __setitem__(self, name: str, value: Any) -> None:
        if (_size_of(value) or 0) > MAX_OUTPUT_CHARS:
            raise _Limit(f"the template builds a value past {MAX_OUTPUT_CHARS:,} characters")
        if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
            raise _Limit(f"the template computes an integer past {MAX_INT_BITS} bits")
        super().__setitem__(name, value)


def _const(node: nodes.Node) -> Any:
    """The value of a constant arithmetic expression, computed under the limits; None if it is not
    one. Catches what Jinja's own compiler (llama-cpp-python's) would fold at load time."""
    ops = {nodes.Pow: "**", nodes.Mul: "*", nodes.Add: "+"}
    if isinstance(node, nodes.Const):
        return node.value
    if isinstance(node, (nodes.Neg, nodes.Pos)):
        inner = _const(node.node)
        return -inner if isinstance(node, nodes.Neg) and isinstance(inner, (int, float)) else inner
    if isinstance(node, nodes.BinExpr):
        left, right = _const(node.left), _const(node.right)
        if left is None or right is None:
            return None
        op = ops.get(type(node))
        if op is not None:
            _check_binop(op, left, right)
        try:
            return node.as_const(nodes.EvalContext(_PLAIN_ENV))
        except Exception:  # noqa: BLE001 - not foldable (1/0, 'a' - 1): Jinja leaves it too
            return None
    return None


_PLAIN_ENV = jinja2.Environment()


def template_problem(source: str) -> str | None:
    """Why a chat template cannot be used safely (syntax error, or a constant expression too
    large to compute), or None. Parses under the limits; never renders, never folds."""
    env = _LimitedSandbox(extensions=[_GenerationTag, "jinja2.ext.loopcontrols"])
    try:
        tree = env.parse(source)
    except jinja2.TemplateSyntaxError as exc:
        return f"Jinja syntax error at line {exc.lineno}: {exc.message}"
    except (RecursionError, MemoryError):
        return "the template is nested too deeply"
    try:
        for node in tree.find_all(nodes.BinExpr):
            _const(node)
    except _Limit as exc:
        return str(exc)
    except RecursionError:
        return "the template is nested too deeply"
    return None


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
        env = _LimitedSandbox(
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
        """Raise TemplateError when the source is not valid Jinja, or computes something past
        the limits at compile time (what llama-cpp-python's Jinja would fold while loading)."""
        self._compiled  # noqa: B018 - compiling is the check
        problem = template_problem(self.source)
        if problem is not None:
            raise TemplateError(f"{self.name}: {problem}")

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
        template = self._compiled
        budget = template.environment.budget  # type: ignore[attr-defined]
        budget.steps = budget.depth = 0
        try:
            out: list[str] = []
            size = 0
            for chunk in template.generate(**ctx):
                size += len(chunk)
                if size > MAX_OUTPUT_CHARS:
                    raise _Limit(f"the render is longer than {MAX_OUTPUT_CHARS:,} characters")
                out.append(chunk)
            return "".join(out)
        except _Limit as exc:
            raise TemplateError(f"{self.name}: {exc}") from None
        except TemplateError:
            raise
        except jinja2.TemplateError as exc:
            raise TemplateError(f"{self.name}: {exc}") from exc
        except RecursionError:
            raise TemplateError(f"{self.name}: the template recurses too deeply") from None
        except (TypeError, ValueError, KeyError, IndexError, AttributeError, ArithmeticError,
                MemoryError) as exc:
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
