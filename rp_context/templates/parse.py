"""Parse a rendered prompt back into messages: the inverse of rendering, where the format allows.

A format is parseable when every role has its own non-empty prefix and suffix and system text is
not merged into user turns. Content must not itself contain the format's markers as text; at the
token level that is guaranteed, since content is never tokenized as special tokens.
"""

from __future__ import annotations

from ..errors import TemplateError
from .model import InstructTemplate, Message

__all__ = ["parse_prompt", "is_parseable"]


def _roles(t: InstructTemplate) -> list[tuple[str, str, str]]:
    sys_prefix, sys_suffix = (
        (t.input_sequence, t.input_suffix) if t.system_same_as_user else (t.system_sequence, t.system_suffix)
    )
    return [
        ("system", sys_prefix, sys_suffix),
        ("user", t.input_sequence, t.input_suffix),
        ("assistant", t.output_sequence, t.output_suffix),
    ]


def is_parseable(t: InstructTemplate) -> bool:
    """Whether `parse_prompt` can invert this template's renders."""
    roles = _roles(t)
    prefixes = [p for _, p, _ in roles]
    return (
        not t.wrap
        and not t.block_prefix
        and t.system_role == "native"
        and not t.system_same_as_user
        and all(prefixes)
        and all(s for _, _, s in roles)
        and len(set(prefixes)) == 3
        and not any("{{" in p for p in prefixes)
        and not any((t.first_input_sequence, t.last_input_sequence, t.first_output_sequence))
        and not any((t.prefix, t.first_block_prefix, t.last_input_suffix, t.message_separator))
        and t.implicit_system is None
    )


def parse_prompt(t: InstructTemplate, text: str) -> list[Message]:
    """The messages a render of `t` came from (a trailing generation header is skipped)."""
    if not is_parseable(t):
        raise TemplateError(f"{t.name or 'template'}: this format cannot be parsed back unambiguously")
    roles = sorted(_roles(t), key=lambda r: len(r[1]), reverse=True)
    pos = 0
    if t.bos_token and text.startswith(t.bos_token):
        pos = len(t.bos_token)
    out: list[Message] = []
    header = t.generation_prompt if t.generation_prompt is not None else (t.last_output_sequence or t.output_sequence)
    while pos < len(text):
        if header and text[pos:] == header:
            break
        for role, prefix, suffix in roles:
            if text.startswith(prefix, pos):
                start = pos + len(prefix)
                end = text.find(suffix, start)
                if end < 0:
                    raise TemplateError(f"unterminated {role} turn at offset {pos}")
                out.append(Message(role, text[start:end]))
                pos = end + len(suffix)
                break
        else:
            raise TemplateError(f"no turn starts at offset {pos}: {text[pos:pos + 30]!r}")
    return out
