"""Stages 2 and 5, the story string: card and preset texts with macros, then the context
template rendered into one segment per value (system prompt, description, ..., world info).

SillyTavern 1.12.6 order (`sillytavern.md` §3): system prompt, world info before, description,
personality, scenario, world info after, persona, as the context preset's story string places them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from .._types import Role
from ..group import GroupMember, group_card_fields
from ..macros import MacroContext, expand_macros
from ..segments import Segment, SegmentKind
from ..storystring import story_string_pieces
from ..worldinfo import FiredEntry
from .model import CardTexts, Fields, Identity, LorePlacement, Request

__all__ = ["card_texts", "story_segments"]

_FIELDS = ("description", "personality", "scenario", "mes_example")

_KIND_OF = {
    "system": SegmentKind.SYSTEM_PROMPT,
    "description": SegmentKind.DESCRIPTION,
    "personality": SegmentKind.PERSONALITY,
    "scenario": SegmentKind.SCENARIO,
    "persona": SegmentKind.PERSONA,
    "wiBefore": SegmentKind.WORLD_INFO_BEFORE,
    "loreBefore": SegmentKind.WORLD_INFO_BEFORE,
    "wiAfter": SegmentKind.WORLD_INFO_AFTER,
    "loreAfter": SegmentKind.WORLD_INFO_AFTER,
    "mesExamples": SegmentKind.EXAMPLE_DIALOGUE,
    "mesExamplesRaw": SegmentKind.EXAMPLE_DIALOGUE,
}
"""Story-string parameters that become their own segments, by kind."""


def macro_field(text: str, ctx: MacroContext) -> str:
    """A card field after SillyTavern's baseChatReplace: macros, and no carriage returns."""
    return expand_macros(text.replace("\r", ""), ctx) if text else ""


# ------------------------------------------------------------------ stage 2: card texts
def card_texts(req: Request, ident: Identity) -> CardTexts:
    """The card fields, persona, system prompt and post-history instructions, macros expanded."""
    base = ident.ctx()
    fields = dict(_card_fields(req, ident, base))
    override = ident.meta.get("scenario")
    if isinstance(override, str) and override:
        fields["scenario"] = [(ident.speaker, macro_field(override, base))]
    persona = req.persona
    persona_text = ""
    if persona is not None and persona.description and persona.position == "in_prompt":
        persona_text = macro_field(persona.description, base)
    system, system_source = _system_prompt(req, ident)
    phi, phi_source = _post_history(req, ident)
    return CardTexts(fields, persona_text, system, system_source, phi, phi_source)


def _card_fields(req: Request, ident: Identity, ctx: MacroContext) -> Fields:
    """description/personality/scenario/mes_example as (owner, text) pieces; joined in groups."""
    roster = req.roster
    if roster is not None and len(roster.members) > 1:
        contexts: dict[str, MacroContext] = {}  # one per member, not one per field

        def expand(text: str, member: GroupMember) -> str:
            own = contexts.get(member.char)
            if own is None:
                own = contexts[member.char] = dataclasses.replace(ctx, char=member.char)
            return expand_macros(text, own)

        gf = group_card_fields(roster, list(req.cards), ident.speaker, wrap=req.instruct.wrap,
                               expand=expand)
        owners = ",".join(gf.included)
        return {n: [(owners, getattr(gf, n))] for n in _FIELDS}
    data = ident.card.data
    return {n: [(ident.speaker, macro_field(getattr(data, n), ctx))] for n in _FIELDS}


def _system_prompt(req: Request, ident: Identity) -> tuple[str, str]:
    """The system prompt (the card's wins when preferred) in the template's system sequence."""
    settings, sysprompt, instruct = req.settings, req.sysprompt, req.instruct
    preset = sysprompt.content if (sysprompt is not None and settings.sysprompt_enabled) else ""
    text = ""
    source = f"preset:sysprompt/{sysprompt.name}" if sysprompt is not None else ""
    own = ident.card.data.system_prompt
    if settings.sysprompt_enabled:
        if settings.prefer_character_prompt and own.strip():
            text = expand_macros(own, ident.ctx(original=preset))
            source = f"card:{ident.speaker}:system_prompt"
        else:
            text = macro_field(preset, ident.ctx())
    if text and (instruct.system_sequence_prefix or instruct.system_sequence_suffix):
        sep = "\n" if instruct.wrap else ""
        pre = instruct.system_sequence_prefix.replace("{{name}}", "System")
        text = sep.join(x for x in (pre, text, instruct.system_sequence_suffix) if x)
    return text, source


def _post_history(req: Request, ident: Identity) -> tuple[str, str]:
    """Post-history instructions (the card's win when preferred), in the speaker's voice."""
    settings, sysprompt = req.settings, req.sysprompt
    preset = (sysprompt.post_history or "") if sysprompt is not None else ""
    own = ident.card.data.post_history_instructions
    if settings.prefer_character_jailbreak and own.strip():
        text = expand_macros(own, ident.ctx(original=preset, char=ident.speaker))
        return text, f"card:{ident.speaker}:post_history_instructions"
    if preset.strip() and settings.sysprompt_enabled:
        text = macro_field(preset, ident.ctx(char=ident.speaker))
        return text, f"preset:sysprompt/{sysprompt.name if sysprompt else ''}"
    return "", ""


# --------------------------------------------------------------- stage 5: story string
def story_segments(req: Request, ident: Identity, card: CardTexts, lore: LorePlacement,
                   examples: Sequence[tuple[str, str]]) -> list[Segment]:
    """The context preset's story string as segments: one per traced value, the template's
    own text (labels, model tokens) as `story_string` segments."""
    params = _story_params(ident, card, lore, examples)
    pieces = story_string_pieces(req.context.story_string, params, ident.ctx(), instruct=True,
                                 wrap=req.instruct.wrap, traced=set(_KIND_OF))
    as_system = req.context.story_string_as_system
    role: Role | None = "system" if as_system else None
    sources = _sources(ident, card)
    default_source = f"preset:context/{req.context.name}"
    counts: dict[SegmentKind, int] = {}
    segments: list[Segment] = []
    for name, text in pieces:
        kind = _KIND_OF.get(name, SegmentKind.STORY_STRING) if name else SegmentKind.STORY_STRING
        n = counts.get(kind, 0)
        counts[kind] = n + 1
        segments.append(Segment(
            id=f"story:{kind.value}:{n}", kind=kind, role=role, text=text, special=name is None,
            pinned=True, source=sources.get(name or "", default_source),
            block="story" if as_system else None,
        ))
    return segments


def _story_params(ident: Identity, card: CardTexts, lore: LorePlacement,
                  examples: Sequence[tuple[str, str]]) -> dict[str, str]:
    """The story string's `{{parameters}}`, in SillyTavern's order."""
    wi_before = _joined(lore.before)
    wi_after = _joined(lore.after)
    mes_examples = "".join(f"<START>\n{b}\n" for _, b in examples)
    return {
        "system": card.system,
        "description": _join_field(card.fields["description"]),
        "personality": _join_field(card.fields["personality"]),
        "scenario": _join_field(card.fields["scenario"]),
        "persona": card.persona,
        "wiBefore": wi_before,
        "loreBefore": wi_before,
        "wiAfter": wi_after,
        "loreAfter": wi_after,
        "mesExamples": mes_examples,
        "mesExamplesRaw": mes_examples,
        "char": ident.story_char,
        "user": ident.user,
        "anchorBefore": "",
        "anchorAfter": "",
    }


def _sources(ident: Identity, card: CardTexts) -> dict[str, str]:
    return {
        "system": card.system_source,
        "description": _field_source(card.fields["description"], "description"),
        "personality": _field_source(card.fields["personality"], "personality"),
        "scenario": _field_source(card.fields["scenario"], "scenario"),
        "persona": f"persona:{ident.user}",
    }


def _joined(entries: Sequence[FiredEntry]) -> str:
    return "\n".join(e.content for e in entries if e.content)


def _join_field(pieces: Sequence[tuple[str, str]]) -> str:
    return "\n".join(t for _, t in pieces if t)


def _field_source(pieces: Sequence[tuple[str, str]], field_name: str) -> str:
    owners = [o for o, t in pieces if t]
    return ",".join(f"card:{o}:{field_name}" for o in owners)
