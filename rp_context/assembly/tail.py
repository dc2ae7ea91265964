"""Stage 8, the tail: what SillyTavern injects at a depth into the history (author's note,
character's notes, persona and world info at depth, keyword lore moved down), then the
post-history instructions, the generation header and the reasoning prefill.

Only this part moves from turn to turn, so llama.cpp's cache keeps everything above it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from .._types import ROLES, Role
from ..cards.model import Card
from ..cards.persona import Persona
from ..chat import ChatMessage
from ..group import group_members, included_members, resolve_member, resolve_mode
from ..macros import MacroContext, expand_macros
from ..segments import Segment, SegmentKind
from ..worldinfo import WorldInfoResult
from .model import CardTexts, Identity, LorePlacement, Request

__all__ = ["injections", "splice", "closing_segments", "stop_strings"]


@dataclass(frozen=True, slots=True)
class Injection:
    """A segment to insert `depth` messages from the end; `key` orders it within its turn."""

    depth: int
    role: Role
    key: str
    segment: Segment


def injections(req: Request, ident: Identity, lore: LorePlacement,
               visible: Sequence[ChatMessage]) -> list[Injection]:
    """Extension prompts at depth, keyed as SillyTavern names them (the key order decides order)."""
    ctx = ident.ctx(char=ident.speaker)
    out = [*_author_note(req, lore.result, visible, ctx), *_depth_prompts(req, ident, ctx)]
    persona = req.persona
    if persona is not None and persona.description and persona.position == "at_depth":
        out.append(Injection(persona.depth, persona.role, "PERSONA_DESCRIPTION", Segment(
            id="persona_depth", kind=SegmentKind.DEPTH_INJECTION, role=persona.role,
            text=expand_macros(persona.description, ctx).strip(), source=f"persona:{persona.name}",
            depth=persona.depth)))
    for entry in lore.result.at_depth if lore.result is not None else []:
        role = _role(entry.role)
        depth = _int(entry.depth, 4)
        out.append(Injection(depth, role, f"customDepthWI-{depth}-{ROLES.index(role)}", Segment(
            id=f"lore:{entry.book}:{entry.uid}", kind=SegmentKind.DEPTH_INJECTION, role=role,
            text=entry.content.strip(), source=f"lore:{entry.book}:{entry.uid}", depth=depth)))
    out = [i for i in out if i.segment.text]
    roster = req.roster
    group = len(req.cards) > 1 or (roster is not None and len(roster.members) > 1)
    joined = roster is None or roster.generation_mode != "swap"  # swap changes the top anyway
    if group and joined and req.settings.keyword_lore == "tail":
        out = _speaker_parts_to_tail(out, note_text=req.settings.author_note.text, persona=persona)
    for e, kind in lore.moved:  # keyword lore in the tail: one system turn before the newest message
        out.append(Injection(1, "system", f"customDepthWI-1-0:{e.order:09.2f}", Segment(
            id=f"lore:{e.book}:{e.uid}", kind=kind, role="system", text=e.content.strip(),
            source=f"lore:{e.book}:{e.uid}", depth=1)))
    return out


def _author_note(req: Request, lore: WorldInfoResult | None, visible: Sequence[ChatMessage],
                 ctx: MacroContext) -> list[Injection]:
    """The author's note, with world info's AN-top and AN-bottom entries around it, on the
    turns its interval picks."""
    note = req.settings.author_note
    fires = bool(note.text.strip()) and note.interval > 0 and (
        note.interval == 1 or sum(1 for m in visible if m.role == "user") % note.interval == 0)
    an_top = list(lore.an_top) if lore is not None else []
    an_bottom = list(lore.an_bottom) if lore is not None else []
    if not (fires or (lore is not None and (an_top or an_bottom) and note.text.strip())):
        return []
    parts = [*(e.content for e in an_top), expand_macros(note.text, ctx), *(e.content for e in an_bottom)]
    text = "\n".join(p for p in parts if p)
    if not (fires and text.strip()):
        return []
    return [Injection(note.depth, note.role, "2_floating_prompt", Segment(
        id="author_note", kind=SegmentKind.AUTHOR_NOTE, role=note.role, text=text.strip(),
        source="chat:author_note", depth=note.depth))]


def _depth_prompts(req: Request, ident: Identity, ctx: MacroContext) -> list[Injection]:
    """Character's notes (`extensions.depth_prompt`) of the cards in the prompt."""
    cards = _depth_cards(req, ident)
    out: list[Injection] = []
    for i, c in enumerate(cards):
        dp = c.data.extensions.get("depth_prompt") if isinstance(c.data.extensions, dict) else None
        if not (isinstance(dp, dict) and str(dp.get("prompt") or "").strip()):
            continue
        depth = _int(dp.get("depth"), 4)
        role = _role(dp.get("role"))
        key = "DEPTH_PROMPT" if len(cards) == 1 else f"DEPTH_PROMPT_{i}"
        text = expand_macros(str(dp["prompt"]), replace(ctx, char=c.data.name)).strip()
        out.append(Injection(depth, role, key, Segment(
            id=f"depth_prompt:{c.data.name}", kind=SegmentKind.DEPTH_INJECTION, role=role, text=text,
            source=f"card:{c.data.name}:depth_prompt", depth=depth)))
    return out


def _depth_cards(req: Request, ident: Identity) -> list[Card]:
    """Whose character's notes go in: a joined group's included members, or every card."""
    roster = req.roster
    if roster is not None and roster.generation_mode != "swap":
        members = group_members(roster, list(req.cards))
        me = resolve_member(members, ident.speaker)
        return [m.card for m in included_members(members, me, resolve_mode(roster))]
    if roster is None and len(req.cards) > 1:
        return list(req.cards)
    return [ident.card]


def _speaker_parts_to_tail(out: list[Injection], *, note_text: str,
                           persona: Persona | None) -> list[Injection]:
    """In a joined group, injections that differ by who speaks (an author's note or persona
    that says `{{char}}`) go to depth 0, the volatile tail, so the whole history stays one
    prefix whoever speaks next (cache-stable policies only)."""
    def moves(inj: Injection) -> bool:
        sid = inj.segment.id
        return (sid == "author_note" and "{{char}}" in note_text.lower()) or (
            sid == "persona_depth" and persona is not None and "{{char}}" in persona.description.lower())

    return [replace(inj, depth=0, segment=inj.segment.model_copy(update={"depth": 0}))
            if moves(inj) else inj for inj in out]


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _role(value: Any) -> Role:
    if value in ("system", "user", "assistant"):
        return value  # type: ignore[no-any-return]
    if value in (0, 1, 2, "0", "1", "2"):
        return ROLES[int(value)]
    return "system"


def splice(history: list[Segment], injections: Sequence[Injection], *, continuing: bool) -> list[Segment]:
    """SillyTavern `doChatInject`: one merged turn per (depth, role), assistant/user/system
    top-down. Changes `history` in place (only its newest messages: a long chat costs no more)."""
    if not injections:
        return history
    # Only the newest messages can receive injections: splice into that tail, keep the rest.
    keep = max(0, len(history) - (max(i.depth for i in injections) + 2))
    newest_first: list[list[Segment]] = [[seg] for seg in reversed(history[keep:])]
    inserted = 0
    for depth in sorted({i.depth for i in injections}):
        for role in ROLES:
            turn = _merged_turn(depth, role, injections)
            if not turn:
                continue
            at = depth + inserted + (1 if continuing and depth == 0 else 0)
            newest_first.insert(min(at, len(newest_first)), turn)
            inserted += 1
    history[keep:] = [seg for unit in reversed(newest_first) for seg in unit]
    return history


def _merged_turn(depth: int, role: Role, injections: Sequence[Injection]) -> list[Segment]:
    """The injections of one (depth, role) in key order, joined by newlines in one pinned block."""
    group = sorted((i for i in injections if i.depth == depth and i.role == role), key=lambda i: i.key)
    block = f"inject:{depth}:{role}"
    segs: list[Segment] = []
    for k, inj in enumerate(group):
        if k:
            segs.append(Segment(id=f"{block}:sep{k}", kind=SegmentKind.STRUCTURE, role=role,
                                text="\n", block=block, pinned=True))
        segs.append(inj.segment.model_copy(update={"block": block, "pinned": True}))
    return segs


def closing_segments(req: Request, ident: Identity, card: CardTexts, history: list[Segment],
                     prefill: str) -> list[Segment]:
    """The history with the post-history instructions after it (before the open message when
    continuing), then the generation header and the reasoning prefill: added to `history` in
    place (a long chat's history is not copied)."""
    instruct = req.instruct
    out = history
    if card.post_history:
        phi = Segment(id="post_history", kind=SegmentKind.POST_HISTORY, role="user",
                      text=card.post_history, pinned=True, source=card.post_history_source)
        out.insert(len(out) - 1 if req.mode == "continue" and out else len(out), phi)
    own = req.mode != "impersonate"
    out.append(Segment(id="header", kind=SegmentKind.GENERATION_HEADER,
                       role="assistant" if own else "user", name=ident.speaker if own else ident.user,
                       pinned=True, source=f"preset:instruct/{instruct.name}"))
    if prefill:  # after the generation header: opens (or skips) the reasoning block
        out.append(Segment(id="reasoning_prefill", kind=SegmentKind.STRUCTURE, text=prefill,
                           special=True, pinned=True, source=f"preset:instruct/{instruct.name}:reasoning"))
    return out


def stop_strings(req: Request) -> list[str]:
    """A new chat-start or example separator line ends the reply (when the preset says so)."""
    context = req.context
    if not context.use_stop_strings:
        return []
    return ["\n" + s for s in (context.chat_start, context.example_separator) if s]
