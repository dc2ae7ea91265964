"""The instruct-template model: SillyTavern's instruct keys plus what real model families need.

SillyTavern describes a format with role sequences and suffixes; families also need BOS/EOS as
tokens, a system-role policy, content trimming, strict alternation and the `[INST]` block that
Llama-2 and Mistral open before a turn. One model holds both, so a shared preset file can say
everything a byte-exact prompt depends on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .._types import ROLES, Role
from ..reasoning import ReasoningFormat

__all__ = ["Message", "InstructTemplate", "Role", "ROLES", "as_messages", "c_trim"]


# C's isspace() in the "C" locale: what llama.cpp's trim() strips (Python's strip() strips more).
_C_SPACE = " \t\n\v\f\r"


def c_trim(text: str) -> str:
    """Strip leading and trailing ASCII whitespace exactly like llama.cpp's `trim()`."""
    return text.strip(_C_SPACE)


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message: a role, its text, and optionally the speaker's name."""

    role: str
    content: str
    name: str | None = None


def as_messages(messages: Any) -> list[Message]:
    """Accept Message objects, OpenAI-style dicts, or anything with role/content attributes."""
    from ..errors import TemplateError

    out: list[Message] = []
    for i, m in enumerate(messages):
        if isinstance(m, Message):
            out.append(m)
            continue
        if isinstance(m, dict):
            role, content, name = m.get("role"), m.get("content"), m.get("name")
        else:
            role = getattr(m, "role", None)
            content = getattr(m, "content", None)
            name = getattr(m, "name", None)
        if not isinstance(role, str) or not isinstance(content, str):
            raise TemplateError(f"message {i}: needs a string 'role' and a string 'content'")
        if name is not None and not isinstance(name, str):
            raise TemplateError(f"message {i}: 'name' must be a string")
        out.append(Message(role, content, name or None))
    return out


class InstructTemplate(BaseModel):
    """An instruct template: SillyTavern's instruct preset keys (1.12.6 and newer) plus family extras.

    Unknown keys are refused so a typo in a preset fails loudly. SillyTavern semantics hold for
    the shared keys (`wrap` puts a newline between a sequence and the text and is the default
    suffix; `{{name}}` in a sequence is the speaker). The extras default to "do what SillyTavern
    does", so an imported SillyTavern preset renders as it would there.
    """

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    name: str = ""
    """Preset name."""
    description: str | None = None
    """What the preset is for (ours; not a SillyTavern key)."""

    # --- SillyTavern instruct keys -------------------------------------------------------------
    input_sequence: str = ""
    """Prefix of each user message."""
    input_suffix: str = ""
    """Suffix of each user message (a newline when empty and `wrap` is on)."""
    output_sequence: str = ""
    """Prefix of each assistant message; the default generation header."""
    output_suffix: str = ""
    """Suffix of each assistant message."""
    system_sequence: str = ""
    """Prefix of system messages."""
    system_suffix: str = ""
    """Suffix of system messages."""
    first_input_sequence: str = ""
    """Replaces `input_sequence` for the first chat message when it is the user's."""
    last_input_sequence: str = ""
    """Replaces `input_sequence` for the last user message."""
    first_output_sequence: str = ""
    """Replaces `output_sequence` for the first chat message when it is the assistant's."""
    last_output_sequence: str = ""
    """Replaces `output_sequence` in the generation header."""
    last_system_sequence: str = ""
    """Header for background (quiet) generations; kept for SillyTavern compatibility."""
    stop_sequence: str = ""
    """End-of-reply marker, sent as a stop string."""
    wrap: bool = True
    """Newline between sequence and text, newline as the default suffix."""
    macro: bool = True
    """Substitute `{{name}}`, `{{user}}` and `{{char}}` in sequences."""
    names_behavior: Literal["none", "force", "always"] = "force"
    """Prefix messages with `Name: `: never, in group chats, or always."""
    system_same_as_user: bool = False
    """Format system messages with the user sequences."""
    sequences_as_stop_strings: bool = True
    """Send the role sequences as stop strings too (newer SillyTavern)."""
    activation_regex: str = ""
    """Model ids this preset is auto-selected for (SillyTavern)."""
    skip_examples: bool = False
    """Leave example dialogues un-instructed (used by the assembler)."""
    user_alignment_message: str = ""
    """A user turn inserted first when the chat would otherwise open with the assistant."""
    system_sequence_prefix: str = ""
    """1.12.6: wraps the system prompt inside the story string (used by the assembler)."""
    system_sequence_suffix: str = ""
    """1.12.6: see `system_sequence_prefix`."""
    story_string_prefix: str = ""
    """Newer SillyTavern: wraps the whole story string (used by the assembler)."""
    story_string_suffix: str = ""
    """Newer SillyTavern: see `story_string_prefix`."""

    # --- family extras (not in SillyTavern) ----------------------------------------------------
    bos_token: str | None = None
    """Text of the BOS token the format starts with (written once, only when asked for)."""
    eos_token: str | None = None
    """Text of the model's EOS token, for stop tokens."""
    system_role: Literal["native", "merge", "refuse"] = "native"
    """System messages: their own turn, merged into the next user turn, or an error."""
    system_merge_separator: str = "\n\n"
    """With `system_role: merge`: text between the merged system text and the user's text."""
    trim_content: list[Role] = Field(default_factory=list)
    """Roles whose content is stripped of surrounding whitespace (as llama.cpp's trim())."""
    strict_alternation: bool = False
    """Refuse conversations whose user/assistant turns do not alternate."""
    block_prefix: str = ""
    """Written before a message when no instruction block is open; an assistant message closes
    the block (the `[INST] ` of Llama-2 and Mistral)."""
    generation_prompt: str | None = None
    """The generation header verbatim (`""`: none, as in Mistral); None derives it from the
    output sequences the SillyTavern way."""
    prefix: str = ""
    """Structure written once at the start of every prompt, after BOS (ChatGLM's `[gMASK]<sop>`)."""
    first_block_prefix: str = ""
    """Replaces `block_prefix` for the first block (llama2-sys-bos writes `<s>` before later ones)."""
    last_input_suffix: str = ""
    """Replaces `input_suffix` when the user's message is the conversation's last (RWKV's cue)."""
    message_separator: str = ""
    """Structure written between two consecutive messages (Monarch's `<s>`)."""
    implicit_system: str | None = None
    """A template's default system prompt: written as a system turn when the conversation does
    not open with a system message (Qwen2.5, SmolLM2, Ling 2.0)."""

    reasoning: ReasoningFormat = Field(default_factory=ReasoningFormat)
    """How the model marks its reasoning, whether it goes back into prompts, the thinking
    switch and budget (`rp_context.reasoning.ReasoningFormat`)."""

    sillytavern_extra: dict[str, Any] = Field(default_factory=dict)
    """SillyTavern keys we keep but do not use (legacy `separator_sequence`, `names`, ...), so an
    imported preset exports back unchanged."""

    def render(self, messages: Any, add_generation_prompt: bool = True, **kwargs: Any) -> Any:
        """Render a conversation: see `rp_context.templates.render.render_instruct`."""
        from .render import render_instruct

        return render_instruct(self, messages, add_generation_prompt, **kwargs)

    def render_turn(self, message: Any, index: int = 1, **kwargs: Any) -> Any:
        """One message rendered on its own (for per-message token caches)."""
        from .render import render_turn

        return render_turn(self, message, index, **kwargs)

    @property
    def names_in_turns(self) -> bool:
        """Whether a turn's sequences or suffixes name someone (`{{name}}`, `{{char}}`, ...), so
        a turn's text depends on who the speakers are, not only on the message."""
        texts = [*self.sequences(), self.input_suffix, self.output_suffix, self.system_suffix,
                 self.last_input_suffix]
        return self.macro and any("{{" in text for text in texts)

    def sequences(self) -> list[str]:
        """Every role sequence (for stop strings and parsing)."""
        return [
            self.input_sequence,
            self.output_sequence,
            self.system_sequence,
            self.first_input_sequence,
            self.last_input_sequence,
            self.first_output_sequence,
            self.last_output_sequence,
            self.last_system_sequence,
        ]
