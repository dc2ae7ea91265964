"""What a turn costs and shows, asked of the template: the one place for these rules.

The `Name: ` label rule (names behaviour × one-on-one/group × role), the speaker label of the
generation header, the `\\nName:` stop string, and the token cost of a turn's markers and of
the generation header. The renderer, the budget, the stop strings, group names and the session
all ask here, so the budget charges exactly what the renderer writes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..tokens import TextPart
from .model import InstructTemplate, Message

__all__ = ["shows_label", "header_shows_label", "label_text", "name_stop", "TurnCosts"]


def shows_label(t: InstructTemplate, *, role: str | None, name: str | None, group: bool,
                user: str) -> bool:
    """SillyTavern's names behaviour: does a message carry a `Name: ` label?

    `always` labels every named speaker; `force` labels the others in a group chat, but not the
    user (the user's role already says who speaks); `none` labels nobody. System (narrator)
    messages never carry one.
    """
    if not name or role == "system" or role is None:
        return False
    if t.names_behavior == "always":
        return True
    return t.names_behavior == "force" and group and not (role == "user" and name == user)


def header_shows_label(t: InstructTemplate, *, group: bool) -> bool:
    """Does the generation (or impersonation) header end with the speaker's `Name:`?"""
    return t.names_behavior == "always" or (t.names_behavior == "force" and group)


def label_text(name: str) -> str:
    """The label written before a message's text."""
    return f"{name}: "


def name_stop(name: str) -> str:
    """The stop string that ends a reply where `name` starts a line."""
    return f"\n{name}:"


Count = Callable[[str, bool], int]
"""count(text, special) -> tokens"""
CountParts = Callable[[list[TextPart]], int]
"""tokens of rendered parts tokenized as the prompt is (structure special, content plain)"""

_SAMPLE = "Hello there."
"""Content a turn is measured around: markers and labels are counted in context, so a space or
newline that merges with the next word is charged as the prompt really spends it."""


@dataclass
class TurnCosts:
    """Token costs of one template's structure, measured by rendering through the template.

    `markers[role]`: the special parts of a middle turn of that role (sequences, suffixes,
    block opener); `header`: the generation header for `speaker`; `label(name)`: the label's
    tokens. Counts come from `count` (the budget's cached counter).
    """

    template: InstructTemplate
    count: Count
    count_parts: CountParts
    group: bool
    user: str
    char: str
    markers: dict[str, int] = field(default_factory=dict)
    frames: dict[str, tuple[str, str]] = field(default_factory=dict)
    """role -> (structure before the text, structure after it) of a middle turn."""
    alone: dict[str, int] = field(default_factory=dict)
    """role -> markers of a turn tokenized on its own (`markers` is the cost of one more turn
    after another, merges at the boundary included)."""
    header: int = 0
    _labels: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from .render import render_instruct, render_turn

        t = self.template
        sample = self.count(_SAMPLE, False)
        for role in ("user", "assistant", "system"):
            parts = render_turn(t, Message(role, _SAMPLE), user=self.user, char=self.char)
            at = next((i for i, p in enumerate(parts) if not p.special), len(parts))
            self.frames[role] = ("".join(p.text for p in parts[:at] if p.special),
                                 "".join(p.text for p in parts[at + 1:] if p.special))
            one = self.count_parts(parts)
            self.alone[role] = max(0, one - sample)
            two = render_instruct(_middle(t), [Message(role, _SAMPLE)] * 2, add_generation_prompt=False,
                                  user=self.user, char=self.char)
            n = self.count_parts(two.parts) - one - sample
            if t.block_prefix and role == "assistant":
                n -= self.count(t.block_prefix, True)  # a reply closes the block a turn opened
            self.markers[role] = max(0, n)
        if t.system_role == "merge":  # system text joins the next user turn after a separator
            self.markers["system"] = self.count(t.system_merge_separator, True)
        self.header = self.header_for(self.char)

    def header_for(self, speaker: str) -> int:
        """Tokens of the generation header for `speaker`."""
        from .render import render_instruct

        gen = render_instruct(self.template, [], add_generation_prompt=True, group=self.group,
                              user=self.user, char=speaker, speaker=speaker)
        return self.count_parts([p for p in gen.parts if p.text])

    def shows(self, role: str | None, name: str | None) -> bool:
        """The label rule for this chat (see `shows_label`)."""
        return shows_label(self.template, role=role, name=name, group=self.group, user=self.user)

    def label(self, name: str) -> int:
        """Tokens of `Name: ` (cached per name)."""
        n = self._labels.get(name)
        if n is None:
            both = self.count(label_text(name) + _SAMPLE, False)
            n = self._labels[name] = max(0, both - self.count(_SAMPLE, False))
        return n


def _middle(t: InstructTemplate) -> InstructTemplate:
    """The template as it renders turns in the middle of a chat (no first/last sequences)."""
    update: dict[str, object] = {"first_input_sequence": "", "first_output_sequence": "",
                                 "last_input_sequence": "", "user_alignment_message": ""}
    if t.system_role == "merge":
        update["system_role"] = "native"
    return t.model_copy(update=update)
