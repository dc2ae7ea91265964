"""Chat templates: the instruct-template model, built-in families, the model's own Jinja
template, stop strings, BOS handling and parsing a prompt back into messages. Families by
name live with the presets (`rp_context.presets.families`); a model's own template in
`rp_context.modeltemplates`."""

from __future__ import annotations

from .jinja import JinjaTemplate
from .model import ROLES, InstructTemplate, Message, as_messages, c_trim
from .parse import is_parseable, parse_prompt
from .render import ChatTemplate, RenderedPrompt, render_instruct, render_turn, token_ids
from .stops import instruct_stop_strings, name_stops, stop_token_ids

__all__ = [
    "ROLES",
    "Message",
    "InstructTemplate",
    "JinjaTemplate",
    "ChatTemplate",
    "RenderedPrompt",
    "render_instruct",
    "render_turn",
    "token_ids",
    "as_messages",
    "c_trim",
    "parse_prompt",
    "is_parseable",
    "instruct_stop_strings",
    "name_stops",
    "stop_token_ids",
]
