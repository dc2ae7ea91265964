"""Render a conversation with an instruct template into structural and content `TextPart`s.

Structure (sequences, suffixes, BOS, block openers) is `special=True`; message content is
`special=False`, so a user who types `<|im_end|>` gets text. Every part carries the index of
the message it came from, so later stages can count and cache tokens per message.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import TemplateError
from ..tokens import TextPart, join_parts
from .model import ROLES, InstructTemplate, Message, as_messages, c_trim

__all__ = ["Conversation", "RenderedPrompt", "ChatTemplate", "generation_parts", "message_parts",
           "opening_parts", "render_instruct", "render_stops", "render_turn", "token_ids"]


@dataclass(frozen=True)
class RenderedPrompt:
    """A rendered prompt: its parts, its text, stop strings, and the BOS text the format uses."""

    parts: list[TextPart]
    stop: list[str] = field(default_factory=list)
    bos_token: str | None = None

    @property
    def text(self) -> str:
        return join_parts(self.parts)

    def message_parts(self, index: int) -> list[TextPart]:
        """The parts that came from message `index`."""
        return [p for p in self.parts if p.source == index]

    def token_ids(self, tokenizer: Any) -> list[int]:
        """Token ids with BOS exactly once: see `token_ids`."""
        return token_ids(self.parts, tokenizer, bos_token=self.bos_token)


def token_ids(parts: Sequence[TextPart], tokenizer: Any, *, bos_token: str | None = None,
              cache: dict[str, list[int]] | None = None,
              blocks: list[tuple[list[TextPart], bool]] | None = None,
              block_memo: dict[int, Any] | None = None) -> list[int]:
    """Tokenize `parts` (content without special parsing) with BOS handled once.

    When the model's tokenizer adds BOS itself (`tokenizer.add_bos`), a leading BOS text written
    by the template is removed and the model's BOS id is put first; otherwise the template's BOS
    text stays and becomes the BOS token through special parsing. With `cache`, only new text is
    tokenized. `blocks`, when given, are the parts to use instead of `parts`, in blocks; with
    `block_memo` too, a block seen before takes its ids whole (`tokenize_blocks_cached`).
    """
    adds_bos = bool(getattr(tokenizer, "add_bos", False))
    bos_id = getattr(tokenizer, "bos_id", None)
    bos = bos_token if adds_bos else None
    if (blocks is not None and block_memo is not None and cache is not None
            and hasattr(tokenizer, "tokenize_blocks_cached")):
        blocks = list(blocks)
        k = next((i for i, (b, _) in enumerate(blocks) if b), None)  # the block with the first part
        if k is not None and (first := _without_bos(blocks[k][0][0], bos)) is not blocks[k][0][0]:
            blocks[k] = ([first, *blocks[k][0][1:]], False)
        ids = tokenizer.tokenize_blocks_cached(blocks, cache, block_memo)
    else:
        parts = [p for b, _ in blocks for p in b] if blocks is not None else list(parts)
        if parts:
            parts[0] = _without_bos(parts[0], bos)
        if cache is not None and hasattr(tokenizer, "tokenize_parts_cached"):
            ids = tokenizer.tokenize_parts_cached(parts, cache)  # only new text is tokenized
        else:
            ids = tokenizer.tokenize_parts(parts)
    if adds_bos and bos_id is not None:
        ids = [bos_id, *ids]
    return ids


def _without_bos(first: TextPart, bos_token: str | None) -> TextPart:
    """The prompt's first part without the template's BOS text (the tokenizer adds BOS)."""
    if bos_token and first.special and first.text.startswith(bos_token):
        return TextPart(first.text[len(bos_token):], True, first.source)
    return first


class ChatTemplate(Protocol):
    """Anything that renders a conversation: a family/instruct template or a model's Jinja one."""

    @property
    def name(self) -> str: ...

    def render(
        self, messages: Iterable[Any], add_generation_prompt: bool = True, **kwargs: Any
    ) -> RenderedPrompt: ...


_NAME_MACRO = re.compile(r"(\{\{(?:name|user|char)\}\})")


def sequence_parts(
    t: InstructTemplate, text: str, name: str, user: str, char: str, source: int | None
) -> list[TextPart]:
    """A sequence (structure) with `{{name}}`, `{{user}}`, `{{char}}` filled in: the names are
    content parts (never parsed for special tokens, whatever the preset puts around them)."""
    if not t.macro or "{{" not in text:
        return [TextPart(text, True, source)] if text else []
    values = {"{{name}}": name, "{{user}}": user, "{{char}}": char}
    parts: list[TextPart] = []
    for k, piece in enumerate(_NAME_MACRO.split(text)):
        if piece:
            is_value = k % 2 == 1
            parts.append(TextPart(values[piece] if is_value else piece, not is_value, source))
    return [p for p in parts if p.text]


def append_structure(parts: list[TextPart], text: str, source: int | None) -> list[TextPart]:
    """`parts` with structural `text` added: joined to a structural last part (one piece, as
    before names became parts), else a part of its own."""
    if not text:
        return parts
    if parts and parts[-1].special:
        return [*parts[:-1], TextPart(parts[-1].text + text, True, parts[-1].source)]
    return [*parts, TextPart(text, True, source)]


def _rstrip_parts(parts: list[TextPart]) -> list[TextPart]:
    out = list(parts)
    while out and out[-1].special:
        text = out[-1].text.rstrip()
        if text:
            out[-1] = TextPart(text, True, out[-1].source)
            break
        out.pop()
    return out


def _default_name(m: Message, user: str, char: str) -> str:
    if m.name:
        return m.name
    return {"user": user, "assistant": char}.get(m.role, "System")


def _check(t: InstructTemplate, msgs: list[Message]) -> None:
    for i, m in enumerate(msgs):
        if m.role not in ROLES:
            raise TemplateError(
                f"{t.name or 'template'}: message {i} has role {m.role!r}; "
                "expected system, user or assistant"
            )
        if m.role == "system" and t.system_role == "refuse":
            raise TemplateError(f"{t.name or 'template'}: this format has no system role (message {i})")
    if t.strict_alternation:
        turns = [m.role for m in msgs if m.role != "system"]
        for j, role in enumerate(turns):
            if role != ("user" if j % 2 == 0 else "assistant"):
                raise TemplateError(
                    f"{t.name or 'template'}: roles must alternate user/assistant/user/..."
                )


def _sequences(
    t: InstructTemplate, m: Message, i: int, first: int | None, last_user: int | None,
    last: int | None = None,
) -> tuple[str, str]:
    role = m.role
    if role == "system" and t.system_same_as_user:
        role = "user"
    if role == "user":
        prefix = t.input_sequence
        if i == first and t.first_input_sequence:
            prefix = t.first_input_sequence
        elif i == last_user and t.last_input_sequence:
            prefix = t.last_input_sequence
        suffix = t.input_suffix
        if t.last_input_suffix and i == last and m.role == "user":
            suffix = t.last_input_suffix
        return prefix, suffix
    if role == "assistant":
        prefix = t.output_sequence
        if i == first and t.first_output_sequence:
            prefix = t.first_output_sequence
        return prefix, t.output_suffix
    return t.system_sequence, t.system_suffix


def _include_name(t: InstructTemplate, m: Message, group: bool, user: str) -> bool:
    """SillyTavern's names behaviour: `always` names every speaker; `force` names the others in a
    group chat, but not the user (the user's role already says who speaks)."""
    from .costs import shows_label

    return shows_label(t, role=m.role, name=m.name, group=group, user=user)


@dataclass(frozen=True, slots=True)
class Conversation:
    """What a message's rendering depends on besides itself: the template, the names, and where
    the first turn, the last user turn and the last message are."""

    template: InstructTemplate
    first: int | None
    last_user: int | None
    last: int
    group: bool = False
    user: str = "User"
    char: str = "Assistant"

    @classmethod
    def of(cls, t: InstructTemplate, roles: Sequence[str], *, group: bool, user: str, char: str
           ) -> Conversation:
        """The conversation of messages with these roles, in order."""
        first = next((i for i, r in enumerate(roles) if r != "system"), None)
        last_user = next((i for i in range(len(roles) - 1, -1, -1) if roles[i] == "user"), None)
        return cls(t, first, last_user, len(roles) - 1, group, user, char)

    @property
    def local(self) -> bool:
        """Whether each message renders alone (`message_parts`): no system text merged into the
        next user turn, no blocks spanning turns, no alignment message shifting the indices, no
        role rule that checks the whole conversation."""
        t = self.template
        return (t.system_role == "native" and not t.strict_alternation and not t.block_prefix
                and not t.user_alignment_message)


def message_parts(c: Conversation, i: int, m: Message, *, content_only: bool = False,
                  emitted: bool = True, opener: str = "",
                  merged: Sequence[tuple[int, str]] = ()) -> list[TextPart]:
    """The parts of message `i` as the whole conversation writes it: `emitted` when a message
    was written before it (the separator goes first), `opener` the block prefix it opens."""
    from .costs import label_text

    t = c.template
    content = c_trim(m.content) if m.role in t.trim_content else m.content
    if content_only:
        return [TextPart(content, False, i), TextPart("\n", True, i)]
    parts: list[TextPart] = []
    if t.message_separator and emitted:
        parts.append(TextPart(t.message_separator, True, i))
    if opener:
        parts.append(TextPart(opener, True, i))
    prefix, suffix = _sequences(t, m, i, c.first, c.last_user, c.last)
    who = _default_name(m, c.user, c.char)
    sep = "\n" if t.wrap else ""
    if not suffix and t.wrap:
        suffix = sep
    body: list[TextPart] = [TextPart(text, False, j) for j, text in merged]
    if merged:
        body.append(TextPart(t.system_merge_separator, True, i))
    if _include_name(t, m, c.group, c.user):
        body.append(TextPart(label_text(m.name or ""), False, i))
    body.append(TextPart(content, False, i))
    body.extend(sequence_parts(t, suffix, who, c.user, c.char, i))
    if prefix:
        head = sequence_parts(t, prefix, who, c.user, c.char, i)
        parts.extend(append_structure(head, sep if any(p.text for p in body) else "", i))
    parts.extend(body)
    return parts


def opening_parts(t: InstructTemplate, first_role: str | None, *, bos: bool = False) -> list[TextPart]:
    """What the template writes before the first message (of role `first_role`; None: no
    messages): BOS, its prefix, its own default system prompt when the conversation has none."""
    parts: list[TextPart] = []
    if bos and t.bos_token:
        parts.append(TextPart(t.bos_token, True, None))
    if t.prefix:
        parts.append(TextPart(t.prefix, True, None))
    if t.implicit_system is not None and first_role != "system":
        # the template's own default system prompt: structure, not a message of the chat
        implicit = t.system_sequence + t.implicit_system + t.system_suffix
        parts.append(TextPart(implicit, True, None))
    return parts


def aligned(t: InstructTemplate, msgs: list[Message]) -> list[Message]:
    """`msgs` with the template's user alignment message before a first turn by the assistant."""
    if t.user_alignment_message:
        first_turn = next((m for m in msgs if m.role != "system"), None)
        if first_turn is not None and first_turn.role == "assistant":
            at = msgs.index(first_turn)
            return [*msgs[:at], Message("user", t.user_alignment_message), *msgs[at:]]
    return msgs


def render_instruct(
    template: InstructTemplate,
    messages: Iterable[Any],
    add_generation_prompt: bool = True,
    *,
    bos: bool = False,
    content_only: Collection[int] = (),
    group: bool = False,
    user: str = "User",
    char: str = "Assistant",
    speaker: str | None = None,
    stop_names: Sequence[str] = (),
) -> RenderedPrompt:
    """Render `messages` with `template`.

    `bos` writes the template's BOS text first (off by default, as llama.cpp's builtin engine;
    `RenderedPrompt.token_ids` then adds BOS once). Messages whose index is in `content_only`
    are written as bare text plus a newline (no role markers), for budget stripping. `group`
    turns on names under `names_behavior: force`; `speaker` names the reply's author in the
    generation header; `stop_names` adds `\\n{name}:` stop strings for other speakers.
    """
    t = template
    msgs = as_messages(messages)
    _check(t, msgs)
    msgs = aligned(t, msgs)
    conv = Conversation.of(t, [m.role for m in msgs], group=group, user=user, char=char)
    parts = opening_parts(t, msgs[0].role if msgs else None, bos=bos)
    in_block = False
    opened = False  # a block was opened before (first_block_prefix is for the first only)
    emitted = False  # a message was written (message_separator goes between messages)
    pending: list[tuple[int, str]] = []  # merged system texts waiting for the next user turn

    def emit(i: int, m: Message, merged: list[tuple[int, str]]) -> None:
        nonlocal in_block, opened, emitted
        opener = ""
        if t.block_prefix and not in_block:
            opener = t.first_block_prefix if t.first_block_prefix and not opened else t.block_prefix
            in_block = opened = True
        parts.extend(message_parts(conv, i, m, emitted=emitted, opener=opener, merged=merged))
        emitted = True
        if m.role == "assistant":
            in_block = False

    for i, m in enumerate(msgs):
        if i in content_only:
            parts.extend(message_parts(conv, i, m, content_only=True))
            continue
        if m.role == "system" and t.system_role == "merge":
            content = c_trim(m.content) if m.role in t.trim_content else m.content
            if content:
                pending.append((i, content))
            continue
        merged: list[tuple[int, str]] = []
        if m.role == "user" and pending:
            merged, pending = pending, []
        emit(i, m, merged)
    if pending:
        # No user turn follows: llama.cpp would drop these; we never drop text silently, so
        # they become a user turn of their own.
        i0 = pending[0][0]
        emit(i0, Message("user", ""), pending)
        # the separator after merged text has nothing to separate
        for k in range(len(parts) - 1, -1, -1):
            if parts[k].text == t.system_merge_separator and parts[k].source == i0 and parts[k].special:
                del parts[k]
                break
    if add_generation_prompt:
        parts.extend(generation_parts(t, group=group, user=user, char=char, speaker=speaker))
    return RenderedPrompt(parts=parts, stop=render_stops(t, user=user, char=speaker or char,
                                                          stop_names=stop_names),
                          bos_token=t.bos_token)


def render_stops(t: InstructTemplate, *, user: str, char: str, stop_names: Sequence[str]) -> list[str]:
    """A render's stop strings: the template's own, then `\\n{name}:` for `stop_names`."""
    from .stops import instruct_stop_strings, name_stops

    stops = instruct_stop_strings(t, user=user, char=char)
    return stops + [s for s in name_stops(stop_names) if s not in stops]


def generation_parts(
    t: InstructTemplate,
    *,
    group: bool,
    user: str,
    char: str,
    speaker: str | None,
) -> list[TextPart]:
    if t.generation_prompt is not None:
        return [TextPart(t.generation_prompt, True, None)] if t.generation_prompt else []
    sep = "\n" if t.wrap else ""
    raw_seq = t.last_output_sequence or t.output_sequence
    who = speaker or char
    seq_parts = sequence_parts(t, raw_seq, who, user, char, None)
    from .costs import header_shows_label

    names = speaker is not None and header_shows_label(t, group=group)
    if names:
        filler = ""
        if (
            t.last_output_sequence
            and t.output_sequence[-1:].isspace()
            and not t.last_output_sequence[-1:].isspace()
        ):
            filler = t.output_sequence[-1]
        out = [*append_structure(seq_parts, sep + filler, None), TextPart(f"{who}:", False, None)]
        return [p for p in out if p.text]
    return append_structure(_rstrip_parts(seq_parts) if t.wrap else seq_parts, sep, None)


def render_turn(
    template: InstructTemplate, message: Any, index: int = 1, **kwargs: Any
) -> list[TextPart]:
    """The parts of one message rendered on its own, as a middle turn of a conversation.

    Used to cache per-message token counts; first/last sequences and system merging, which
    depend on neighbours, are not applied.
    """
    (m,) = as_messages([message])
    t = template.model_copy(
        update={"first_input_sequence": "", "first_output_sequence": "", "last_input_sequence": "",
                "prefix": "", "implicit_system": None, "first_block_prefix": "",
                "last_input_suffix": "", "message_separator": ""}
    )
    if m.role == "system" and t.system_role == "merge":
        t = t.model_copy(update={"system_role": "native"})
    rendered = render_instruct(t, [m], add_generation_prompt=False, **kwargs)
    parts = [TextPart(p.text, p.special, index) for p in rendered.parts]
    if template.message_separator:  # a middle turn follows another one
        parts.insert(0, TextPart(template.message_separator, True, index))
    return parts
