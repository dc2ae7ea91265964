"""Preset models, one per kind: instruct, context (story string), sysprompt, sampler, bundle.

Every preset file starts with `kind`, `version` and `name` (optional `description`); the rest
are the kind's fields. Unknown keys are refused so typos fail loudly.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..policy import BudgetPolicy
from ..sampling import SamplerSettings
from ..templates.model import InstructTemplate

__all__ = [
    "PresetKind",
    "PRESET_VERSION",
    "InstructPreset",
    "ContextPreset",
    "SysPromptPreset",
    "SamplerPreset",
    "BundlePreset",
    "Preset",
    "MODEL_BY_KIND",
    "KIND_DIRS",
]

PresetKind = Literal["instruct", "context", "sysprompt", "sampler", "bundle"]
PRESET_VERSION = 1

InstructPreset = InstructTemplate
"""An instruct preset is an instruct template (the format of each turn)."""


class ContextPreset(BaseModel):
    """A context template: the story string (Handlebars) and the separators around examples and chat."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    name: str = ""
    """Preset name."""
    description: str | None = None
    """What the preset is for."""
    story_string: str = ""
    """Handlebars template of the prompt preamble (system prompt, card fields, lore)."""
    example_separator: str = "***"
    """Heading before each example-dialogue block."""
    chat_start: str = "***"
    """Line between the preamble and the chat history."""
    use_stop_strings: bool = False
    """Send `chat_start` and `example_separator` as stop strings."""
    names_as_stop_strings: bool = True
    """Send `\\n{name}:` stop strings for the other speakers."""
    allow_jailbreak: bool = False
    """SillyTavern 1.12.6: inject the card's post-history instructions."""
    always_force_name2: bool = True
    """SillyTavern (non-instruct mode): end the prompt with the character's name."""
    trim_sentences: bool = False
    """Cut the reply back to the last full sentence."""
    single_line: bool = False
    """Stop at the first newline."""
    story_string_position: int = 0
    """Newer SillyTavern: 0 at the top of the prompt, 1 inside the chat at `story_string_depth`."""
    story_string_depth: int = 1
    """Newer SillyTavern: depth when the story string sits in the chat."""
    story_string_role: int = 0
    """Newer SillyTavern: 0 system, 1 user, 2 assistant (story string in the chat)."""
    story_string_as_system: bool = False
    """Ours: render the story string, examples and chat start as the template's system turn.
    Off for SillyTavern presets, whose story strings carry the model's tokens themselves."""
    sillytavern_extra: dict[str, Any] = Field(default_factory=dict)
    """SillyTavern keys we keep but do not use, for a lossless export."""


class SysPromptPreset(BaseModel):
    """A system prompt (and optional post-history instruction)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    name: str = ""
    """Preset name."""
    description: str | None = None
    """What the preset is for."""
    content: str = ""
    """The system prompt; macros such as `{{char}}` are expanded by the assembler."""
    post_history: str | None = None
    """Instruction placed after the chat history (newer SillyTavern)."""
    sillytavern_extra: dict[str, Any] = Field(default_factory=dict)
    """SillyTavern keys we keep but do not use, for a lossless export."""


class SamplerPreset(SamplerSettings):
    """Sampler settings with a name (`presets/sampler/*.yaml`)."""

    name: str = ""
    """Preset name."""
    description: str | None = None
    """What the preset is for."""

    def settings(self) -> SamplerSettings:
        """The plain sampler settings a backend takes."""
        return SamplerSettings(**self.model_dump(exclude={"name", "description"}))


class BundlePreset(BaseModel):
    """A bundle names one preset of each kind, so one name selects a whole setup."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    name: str = ""
    """Bundle name."""
    description: str | None = None
    """What the bundle is for."""
    instruct: str
    """Instruct preset name."""
    context: str
    """Context preset name."""
    sysprompt: str
    """System-prompt preset name."""
    sampler: str
    """Sampler preset name."""
    budget: str | None = None
    """Budget-policy preset name (the kind arrives with the budget manager)."""


class BudgetPreset(BudgetPolicy):
    """A budget policy with a name (`presets/budget/*.yaml`)."""


Preset = InstructTemplate | ContextPreset | SysPromptPreset | SamplerPreset | BundlePreset | BudgetPreset

MODEL_BY_KIND: dict[str, type[BaseModel]] = {
    "instruct": InstructTemplate,
    "context": ContextPreset,
    "sysprompt": SysPromptPreset,
    "sampler": SamplerPreset,
    "bundle": BundlePreset,
    "budget": BudgetPreset,
}

KIND_DIRS: dict[str, str] = {
    "instruct": "instruct",
    "context": "context",
    "sysprompt": "sysprompt",
    "sampler": "sampler",
    "bundle": "bundles",
    "budget": "budget",
}
