"""Assemble cards, persona, chat and presets into typed segments in SillyTavern's text-completion order.

The order (SillyTavern 1.12.6, `sillytavern.md` §3): story string (system prompt, world info
before, description, personality, scenario, world info after, persona), example dialogues,
chat start, the chat history with depth injections (author's note, character's note, world info
at depth, persona at depth) spliced in, post-history instructions, and the generation header.
Only the tail moves from turn to turn; macros that would change the prompt under llama.cpp's
cache are frozen per message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ._types import ROLES, Role
from .cards.model import Card, Lorebook
from .cards.persona import Persona
from .cards.roster import GroupRoster
from .chat import Chat, ChatMessage
from .chatcontext import FROZEN_KEY, frozen_store, identify, message_text
from .errors import RPContextError
from .flatten import FlatPrompt, Mode, flatten
from .macros import MacroContext, expand_macros
from .presets.models import ContextPreset, SysPromptPreset
from .segments import Segment, SegmentKind, Tier
from .storystring import story_string_pieces
from .templates.model import InstructTemplate

__all__ = ["AuthorNote", "AssemblySettings", "AssembledPrompt", "assemble", "parse_examples"]


_ROLE_ORDER = ROLES


class AuthorNote(BaseModel):
    """The chat's author's note, inserted `depth` messages from the end every `interval` user turns."""

    model_config = ConfigDict(extra="forbid")

    text: str = ""
    depth: int = Field(4, ge=0, le=1000)
    role: Role = "system"
    interval: int = Field(1, ge=0)
    """1: every turn; N: every N-th user message; 0: never."""


class AssemblySettings(BaseModel):
    """Choices SillyTavern keeps in user settings rather than presets."""

    model_config = ConfigDict(extra="forbid")

    prefer_character_prompt: bool = True
    """The card's `system_prompt` replaces the preset's (`{{original}}` inserts the preset's)."""
    prefer_character_jailbreak: bool = True
    """The card's `post_history_instructions` replace the preset's."""
    sysprompt_enabled: bool = True
    author_note: AuthorNote = Field(default_factory=AuthorNote)
    include_examples: bool = True
    """False is SillyTavern's "never include examples" (`{{mesExamples}}` still renders)."""
    world_info: Any = None
    """`rp_context.worldinfo.WorldInfoSettings`, or None for its defaults."""
    keyword_lore: Literal["story", "tail"] | None = None
    """Where world-info entries activated by keywords go when their position is before/after the
    card: "story" (SillyTavern: in the story string, at the top) or "tail" (a system turn just
    before the newest message). Entries that come and go turn by turn at the top of the prompt
    make llama.cpp re-read everything after them; in the tail they cost only themselves.
    Constant entries stay in the story string either way. None (unset): the budget policy's
    `keyword_lore` decides (`build_prompt`); `assemble` alone then keeps SillyTavern's "story"."""


@dataclass
class AssembledPrompt:
    """Segments in prompt order plus what flattening and generation need."""

    segments: list[Segment]
    template: InstructTemplate
    user: str
    char: str
    group: bool
    members: list[str]
    mode: Mode
    stop: list[str]
    lore: Any = None
    warnings: list[str] = field(default_factory=list)
    frozen_changed: bool = False
    """True when new frozen macro values were written into the chat: save it to keep them."""
    memories: list[Any] = field(default_factory=list)
    """Summaries stored in the chat (`memory.StoredMemory`, oldest first); the budget shows one
    in the `memory` segment when something is evicted."""

    def flatten(self) -> FlatPrompt:
        """Render the segments once through the template."""
        others = [m for m in self.members if m != self.char]
        stop_names = [*others, self.user] if self.mode != "impersonate" else [self.char, *others]
        return flatten(
            self.segments,
            self.template,
            user=self.user,
            char=self.char,
            speaker=self.char if self.mode != "impersonate" else self.user,
            group=self.group,
            mode=self.mode,
            stop_names=stop_names,
        )

    @property
    def text(self) -> str:
        return self.flatten().text

    def by_id(self, segment_id: str) -> Segment:
        for seg in self.segments:
            if seg.id == segment_id:
                return seg
        raise KeyError(segment_id)


def parse_examples(text: str) -> list[str]:
    """SillyTavern `parseMesExamples`: split on `<START>` into blocks (each without its heading)."""
    if not text or text.strip() == "<START>":
        return []
    if not text.lstrip().upper().startswith("<START>"):
        text = "<START>\n" + text
    blocks = re.split(r"<START>", text, flags=re.IGNORECASE)[1:]
    return [b.strip() for b in blocks if b.strip()]


def _example_turns(block: str, user: str, char: str) -> list[tuple[Role, str, str]] | None:
    """SillyTavern `parseExampleIntoIndividual`: (role, name, text) turns; None if nothing parses."""
    turns: list[tuple[Role, str, list[str]]] = []
    for line in block.split("\n"):
        if line.startswith(f"{user}:"):
            turns.append(("user", user, [line[len(user) + 1 :].lstrip()]))
        elif line.startswith(f"{char}:"):
            turns.append(("assistant", char, [line[len(char) + 1 :].lstrip()]))
        elif turns:
            turns[-1][2].append(line)
    if not turns:
        return None
    return [(r, n, "\n".join(lines).strip()) for r, n, lines in turns]


def _macro_field(text: str, ctx: MacroContext) -> str:
    """A card field after SillyTavern's baseChatReplace: macros, and no carriage returns."""
    return expand_macros(text.replace("\r", ""), ctx) if text else ""


def assemble(
    *,
    cards: Sequence[Card],
    chat: Chat,
    instruct: InstructTemplate,
    context: ContextPreset,
    sysprompt: SysPromptPreset | None = None,
    persona: Persona | None = None,
    roster: GroupRoster | None = None,
    speaker: str | None = None,
    lorebooks: Sequence[Lorebook] = (),
    settings: AssemblySettings | None = None,
    mode: Mode = "normal",
    counter: Any = None,
    max_context: int = 8192,
    now: datetime | None = None,
) -> AssembledPrompt:
    """Build the prompt's segments for the next reply by `speaker` (default: the only card)."""
    if not cards:
        raise RPContextError("assemble needs at least one card")
    settings = settings or AssemblySettings()
    warnings: list[str] = []
    by_name: dict[str, Card] = {}
    for card in cards:
        by_name.setdefault(card.data.name, card)
    who = identify(chat, cards, roster=roster, persona=persona, warn=warnings.append)
    members = list(who.members)
    group = len(members) > 1
    if speaker is None:
        speaker = members[0]
    if speaker not in by_name:
        raise RPContextError(f"speaker {speaker!r} is not one of the cards ({', '.join(by_name)})")
    card = by_name[speaker]
    user = who.user
    meta: dict[str, Any] = chat.header.chat_metadata if chat.header is not None else {}
    chat_id = who.chat_id
    frozen_before = repr(meta.get(FROZEN_KEY)) + repr([m.extra.get(FROZEN_KEY) for m in chat.messages])
    card_frozen = frozen_store(meta) if chat.header is not None else {}
    clock = (lambda: now) if now is not None else (lambda: datetime.now().astimezone())
    group_names = ", ".join(members)

    created = who.created
    card_clock = (lambda: now) if now is not None else ((lambda: created) if created else clock)

    # In a joined group the prompt's top must not depend on who speaks (llama.cpp's cache): there
    # `{{char}}` in the system prompt and story string means the whole cast, and the speaker is
    # named only in the tail (generation header, post-history instructions, author's note).
    joined = group and (roster is None or roster.generation_mode != "swap")
    story_char = group_names if joined else speaker

    def ctx(frozen: dict[str, str] | None, *, scope: str = "card", when: Any = None,
            char: str | None = None, **kw: Any) -> MacroContext:
        return MacroContext(
            user=user,
            char=char or story_char,
            group=group_names if group else "",
            chat_id=chat_id,
            now=when or card_clock,
            frozen=frozen,
            seed=f"{chat_id}:{scope}",
            warnings=warnings,  # macros out of range are left as text and said here
            **kw,
        )

    base_ctx = ctx(card_frozen)
    # --- card fields (SillyTavern baseChatReplace: macros without card macros) -----------------
    fields = _card_fields(cards, by_name, roster, speaker, base_ctx, instruct)
    scenario_override = meta.get("scenario") if isinstance(meta.get("scenario"), str) else None
    if scenario_override:
        fields["scenario"] = [(speaker, _macro_field(scenario_override, base_ctx))]
    persona_text = ""
    if persona is not None and persona.description and persona.position == "in_prompt":
        persona_text = _macro_field(persona.description, base_ctx)

    # --- system prompt and post-history instructions -----------------------------------------
    global_sys = sysprompt.content if (sysprompt is not None and settings.sysprompt_enabled) else ""
    system_text = ""
    system_source = f"preset:sysprompt/{sysprompt.name}" if sysprompt is not None else ""
    if settings.sysprompt_enabled:
        if settings.prefer_character_prompt and card.data.system_prompt.strip():
            system_text = expand_macros(card.data.system_prompt, ctx(card_frozen, original=global_sys))
            system_source = f"card:{speaker}:system_prompt"
        else:
            system_text = _macro_field(global_sys, base_ctx)
    if system_text and (instruct.system_sequence_prefix or instruct.system_sequence_suffix):
        sep = "\n" if instruct.wrap else ""
        pre = instruct.system_sequence_prefix.replace("{{name}}", "System")
        system_text = sep.join(x for x in (pre, system_text, instruct.system_sequence_suffix) if x)
    global_phi = (sysprompt.post_history or "") if sysprompt is not None else ""
    phi_text, phi_source = "", ""
    if settings.prefer_character_jailbreak and card.data.post_history_instructions.strip():
        phi_text = expand_macros(card.data.post_history_instructions,
                                 ctx(card_frozen, original=global_phi, char=speaker))
        phi_source = f"card:{speaker}:post_history_instructions"
    elif global_phi.strip() and settings.sysprompt_enabled:
        phi_text = _macro_field(global_phi, ctx(card_frozen, char=speaker))
        phi_source = f"preset:sysprompt/{sysprompt.name if sysprompt else ''}"

    # --- chat messages, macros frozen per message ----------------------------------------------
    visible = [m for m in chat.messages if not m.hidden]
    texts: dict[str, str] = {}
    for m in visible:
        texts[m.id] = message_text(m, who, now=now, warnings=warnings)  # as the screen shows it

    # --- reasoning: kept out of the prompt but for the last N replies; the thinking switch ------
    from .reasoning import prepare_prompt

    own_header = instruct.generation_prompt if instruct.generation_prompt is not None else (
        instruct.last_output_sequence or instruct.output_sequence)
    prefill = prepare_prompt(visible, texts, instruct.reasoning, meta, mode=mode, header=own_header)

    # --- world info -----------------------------------------------------------------------------
    lore = None
    books = [b for b in (*_card_books(cards, roster, speaker, by_name), *lorebooks) if b is not None]
    if books:
        lore = _activate_lore(books, visible, texts, settings, counter, max_context, chat_id, base_ctx)
        for d in getattr(lore, "warnings", []) or []:
            warnings.append(str(d))

    # --- story string ---------------------------------------------------------------------------
    segments: list[Segment] = []
    lore_before = list(getattr(lore, "before", []) if lore else [])
    lore_after = list(getattr(lore, "after", []) if lore else [])
    moved: list[Any] = []
    if lore is not None and settings.keyword_lore == "tail":
        moved = [e for e in (*lore_before, *lore_after) if not e.unconditional]
        lore_before = [e for e in lore_before if e.unconditional]
        lore_after = [e for e in lore_after if e.unconditional]
    wi_before = _joined(lore_before)
    wi_after = _joined(lore_after)
    examples = [] if not settings.include_examples else _example_blocks(fields, lore)
    mes_examples_raw = "".join(f"<START>\n{b}\n" for _, b in examples)
    params = {
        "system": system_text,
        "description": _join_field(fields["description"]),
        "personality": _join_field(fields["personality"]),
        "scenario": _join_field(fields["scenario"]),
        "persona": persona_text,
        "wiBefore": wi_before,
        "loreBefore": wi_before,
        "wiAfter": wi_after,
        "loreAfter": wi_after,
        "mesExamples": mes_examples_raw,
        "mesExamplesRaw": mes_examples_raw,
        "char": story_char,
        "user": user,
        "anchorBefore": "",
        "anchorAfter": "",
    }
    traced = {"system", "description", "personality", "scenario", "persona", "wiBefore",
              "loreBefore", "wiAfter", "loreAfter", "mesExamples", "mesExamplesRaw"}
    pieces = story_string_pieces(
        context.story_string, params, base_ctx, instruct=True, wrap=instruct.wrap, traced=traced
    )
    as_system = context.story_string_as_system
    story_role: Role | None = "system" if as_system else None
    kind_of = {
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
    source_of = {
        "system": system_source,
        "description": _field_source(fields["description"], "description"),
        "personality": _field_source(fields["personality"], "personality"),
        "scenario": _field_source(fields["scenario"], "scenario"),
        "persona": f"persona:{user}",
    }
    counts: dict[str, int] = {}
    for name, text in pieces:
        kind = kind_of.get(name, SegmentKind.STORY_STRING) if name else SegmentKind.STORY_STRING
        n = counts.get(kind, 0)
        counts[kind] = n + 1
        segments.append(
            Segment(
                id=f"story:{kind.value}:{n}",
                kind=kind,
                role=story_role,
                text=text,
                special=name is None,
                pinned=True,
                source=source_of.get(name or "", f"preset:context/{context.name}"),
                block="story" if as_system else None,
            )
        )

    # --- example dialogues ----------------------------------------------------------------------
    def story_break() -> None:
        # In a system turn, story, examples and chat start are separate lines.
        if as_system and segments and not segments[-1].text.endswith("\n"):
            segments.append(Segment(id=f"story:break:{len(segments)}", kind=SegmentKind.STORY_STRING,
                                    role="system", text="\n", special=True, pinned=True,
                                    block="story"))

    for b, (owner, block) in enumerate(examples):
        heading = (context.example_separator + "\n") if context.example_separator else "<START>\n"
        block_text = expand_macros(block, ctx(card_frozen))
        if as_system:
            segments.append(_example_segment(b, "\n" + heading + block_text, None, None, owner, "story"))
            continue
        turns = None if instruct.skip_examples else _example_turns(block_text, user, speaker)
        if turns is None:
            segments.append(Segment(id=f"example:{b}:heading", kind=SegmentKind.EXAMPLE_DIALOGUE,
                                    text=heading + block_text + "\n", special=False,
                                    source=f"card:{owner}:mes_example", block=f"example:{b}"))
            continue
        segments.append(Segment(id=f"example:{b}:heading", kind=SegmentKind.EXAMPLE_DIALOGUE,
                                text=heading, special=True, source=f"preset:context/{context.name}",
                                block=f"example:{b}"))
        for t, (role, name, text) in enumerate(turns):
            segments.append(Segment(id=f"example:{b}:{t}", kind=SegmentKind.EXAMPLE_DIALOGUE,
                                    role=role, name=name, text=text,
                                    source=f"card:{owner}:mes_example", block=None,
                                    extra={"example_block": str(b)}))

    # --- chat start -----------------------------------------------------------------------------
    if context.chat_start:
        story_break()
        expanded = expand_macros(context.chat_start, ctx(card_frozen))
        start = expanded + ("" if as_system else "\n")
        segments.append(Segment(id="chat_start", kind=SegmentKind.CHAT_START, role=story_role,
                                text=start, special=expanded == context.chat_start,  # names: content
                                pinned=True, source=f"preset:context/{context.name}",
                                block="story" if as_system else None))

    # --- memory of evicted turns (the budget keeps it only when something is evicted) ----------
    from .memory import memory_text, stored_memories

    memories = stored_memories(visible)
    if memories:
        segments.append(Segment(id="memory", kind=SegmentKind.MEMORY, role="system",
                                text=memory_text(memories[-1].text, "[Summary: {{summary}}]"),
                                source=f"chat:{memories[-1].message_id}:memory",
                                message_id=None))

    # --- history with depth injections ----------------------------------------------------------
    history: list[Segment] = []
    for m in visible:
        history.append(_message_segment(m, texts[m.id], user))
    injections = _injections(
        card=card, cards=cards, roster=roster, by_name=by_name, speaker=speaker, persona=persona,
        settings=settings, visible=visible, lore=lore, ctx=ctx(card_frozen, char=speaker),
    )
    for e in moved:  # keyword lore in the tail: one system turn before the newest message
        injections.append(_Injection(1, "system", f"customDepthWI-1-0:{e.order:09.2f}", Segment(
            id=f"lore:{e.book}:{e.uid}", kind=SegmentKind.WORLD_INFO_BEFORE
            if e in getattr(lore, "before", []) else SegmentKind.WORLD_INFO_AFTER,
            role="system", text=e.content.strip(), source=f"lore:{e.book}:{e.uid}", depth=1)))
    history = _splice(history, injections, continuing=mode == "continue")
    if phi_text:
        phi = Segment(id="post_history", kind=SegmentKind.POST_HISTORY, role="user", text=phi_text,
                      pinned=True, source=phi_source)
        if mode == "continue" and history:
            history.insert(len(history) - 1, phi)
        else:
            history.append(phi)
    segments.extend(history)
    segments.append(Segment(id="header", kind=SegmentKind.GENERATION_HEADER,
                            role="assistant" if mode != "impersonate" else "user",
                            name=speaker if mode != "impersonate" else user, pinned=True,
                            source=f"preset:instruct/{instruct.name}"))
    if prefill:  # after the generation header: opens (or skips) the reasoning block
        segments.append(Segment(id="reasoning_prefill", kind=SegmentKind.STRUCTURE, text=prefill,
                                special=True, pinned=True,
                                source=f"preset:instruct/{instruct.name}:reasoning"))
    stop: list[str] = []
    if context.use_stop_strings:
        for s in (context.chat_start, context.example_separator):
            if s:
                stop.append("\n" + s)
    frozen_after = repr(meta.get(FROZEN_KEY)) + repr([m.extra.get(FROZEN_KEY) for m in chat.messages])
    return AssembledPrompt(
        segments=segments,
        template=instruct,
        user=user,
        char=speaker,
        group=group,
        members=members,
        mode=mode,
        stop=stop,
        lore=lore,
        warnings=warnings,
        frozen_changed=frozen_before != frozen_after,
        memories=memories,
    )


# --------------------------------------------------------------------------------------------
def _joined(entries: Sequence[Any]) -> str:
    return "\n".join(e.content for e in entries if getattr(e, "content", ""))


def _join_field(pieces: list[tuple[str, str]]) -> str:
    return "\n".join(t for _, t in pieces if t)


def _field_source(pieces: list[tuple[str, str]], field_name: str) -> str:
    owners = [o for o, t in pieces if t]
    return ",".join(f"card:{o}:{field_name}" for o in owners)


def _card_fields(
    cards: Sequence[Card],
    by_name: Mapping[str, Card],
    roster: GroupRoster | None,
    speaker: str,
    ctx: MacroContext,
    instruct: InstructTemplate,
) -> dict[str, list[tuple[str, str]]]:
    """description/personality/scenario/mes_example as (owner, text) pieces; joined in groups."""
    names = ("description", "personality", "scenario", "mes_example")
    if roster is not None and len(roster.members) > 1:
        from .group import group_card_fields

        def expand(text: str, member: Any) -> str:
            return expand_macros(text, MacroContext(**{**ctx.__dict__, "char": member.char}))

        gf = group_card_fields(roster, list(cards), speaker, wrap=instruct.wrap, expand=expand)
        owners = ",".join(gf.included)
        return {n: [(owners, getattr(gf, n))] for n in names}
    card = by_name[speaker]
    return {n: [(speaker, _macro_field(getattr(card.data, n), ctx))] for n in names}


def _example_blocks(fields: Mapping[str, list[tuple[str, str]]], lore: Any) -> list[tuple[str, str]]:
    blocks: list[tuple[str, str]] = []
    for entry in getattr(lore, "examples_top", []) if lore else []:
        blocks += [("lore", b) for b in parse_examples(entry.content)]
    for owner, text in fields.get("mes_example", []):
        blocks += [(owner, b) for b in parse_examples(text)]
    for entry in getattr(lore, "examples_bottom", []) if lore else []:
        blocks += [("lore", b) for b in parse_examples(entry.content)]
    return blocks


def _example_segment(b: int, text: str, role: Role | None, name: str | None, owner: str,
                     block: str | None) -> Segment:
    return Segment(id=f"example:{b}", kind=SegmentKind.EXAMPLE_DIALOGUE, role="system" if block else role,
                   name=name, text=text, source=f"card:{owner}:mes_example", block=block,
                   extra={"example_block": str(b)})


@dataclass(frozen=True, slots=True)
class _Scan:
    """A message as world info scans it: its author and its text after macros."""

    name: str
    text: str


_SEGMENTS: dict[tuple[str, str, str | None, str], Segment] = {}
"""Message segments by (id, text, name, role): reused across turns, never modified after assembly."""


def _message_segment(m: ChatMessage, text: str, user: str) -> Segment:
    role: Role = m.role if m.role in ("user", "assistant", "system") else "assistant"  # type: ignore[assignment]
    name = m.name or (user if role == "user" else None)
    if role == "system":
        name = None
    key = (m.id, text, name, role)
    seg = _SEGMENTS.get(key)
    if seg is None:
        if len(_SEGMENTS) > 100_000:
            _SEGMENTS.clear()
        seg = _SEGMENTS[key] = _new_message_segment(m, text, role, name)
    return seg


def _new_message_segment(m: ChatMessage, text: str, role: Role, name: str | None) -> Segment:
    # built without validation: this runs for every message of the chat on every turn
    return Segment.model_construct(
        id=f"msg:{m.id}", kind=SegmentKind.CHAT_MESSAGE, role=role, name=name, text=text,
        special=False, pinned=False, tier=Tier.FULL, source=f"chat:{m.id}", message_id=m.id,
        block=None, depth=None, extra={})


def _card_books(cards: Sequence[Card], roster: GroupRoster | None, speaker: str,
                by_name: Mapping[str, Card]) -> list[Lorebook | None]:
    if roster is not None and roster.generation_mode != "swap":
        return [c.data.character_book for c in cards]
    return [by_name[speaker].data.character_book]


def _activate_lore(books: Sequence[Lorebook], visible: Sequence[ChatMessage], texts: Mapping[str, str],
                   settings: AssemblySettings, counter: Any, max_context: int, chat_id: str,
                   ctx: MacroContext) -> Any:
    from . import worldinfo
    from .tokens import TiktokenCounter

    # The chat messages themselves, except where macros changed a message's text.
    scan = [m if texts[m.id] is m.text else _Scan(m.name, texts[m.id]) for m in visible]
    return worldinfo.activate_world_info(
        books,
        scan,
        settings=settings.world_info or worldinfo.WorldInfoSettings(),
        counter=counter or TiktokenCounter(),
        max_context_tokens=max_context,
        seed=f"{chat_id}:{len(visible)}",
        macro_ctx=ctx,
    )


@dataclass
class _Injection:
    depth: int
    role: Role
    key: str
    segment: Segment


def _injections(*, card: Card, cards: Sequence[Card], roster: GroupRoster | None,
                by_name: Mapping[str, Card], speaker: str, persona: Persona | None,
                settings: AssemblySettings, visible: Sequence[ChatMessage], lore: Any,
                ctx: MacroContext) -> list[_Injection]:
    """Extension prompts at depth, keyed as SillyTavern names them (the key order decides order)."""
    out: list[_Injection] = []
    note = settings.author_note
    user_turns = sum(1 for m in visible if m.role == "user")
    fires = bool(note.text.strip()) and note.interval > 0 and user_turns % note.interval == 0
    an_top = list(getattr(lore, "an_top", []) or []) if lore else []
    an_bottom = list(getattr(lore, "an_bottom", []) or []) if lore else []
    if fires or (lore and (an_top or an_bottom) and note.text.strip()):
        parts = [*(e.content for e in an_top), expand_macros(note.text, ctx), *(e.content for e in an_bottom)]
        text = "\n".join(p for p in parts if p)
        if fires and text.strip():
            out.append(_Injection(note.depth, note.role, "2_floating_prompt", Segment(
                id="author_note", kind=SegmentKind.AUTHOR_NOTE, role=note.role, text=text.strip(),
                source="chat:author_note", depth=note.depth)))
    depth_cards = [card]
    if roster is not None and roster.generation_mode != "swap":
        from .group import group_members, included_members, resolve_member, resolve_mode

        gm = group_members(roster, list(cards))
        me = resolve_member(gm, speaker)
        depth_cards = [m.card for m in included_members(gm, me, resolve_mode(roster))]
    elif roster is None and len(cards) > 1:
        depth_cards = list(cards)
    for i, c in enumerate(depth_cards):
        dp = c.data.extensions.get("depth_prompt") if isinstance(c.data.extensions, dict) else None
        if isinstance(dp, dict) and str(dp.get("prompt") or "").strip():
            depth = _int(dp.get("depth"), 4)
            role = _role(dp.get("role"))
            member_ctx = MacroContext(**{**ctx.__dict__, "char": c.data.name})
            key = "DEPTH_PROMPT" if len(depth_cards) == 1 else f"DEPTH_PROMPT_{i}"
            out.append(_Injection(depth, role, key, Segment(
                id=f"depth_prompt:{c.data.name}", kind=SegmentKind.DEPTH_INJECTION, role=role,
                text=expand_macros(str(dp["prompt"]), member_ctx).strip(),
                source=f"card:{c.data.name}:depth_prompt", depth=depth)))
    if persona is not None and persona.description and persona.position == "at_depth":
        out.append(_Injection(persona.depth, persona.role, "PERSONA_DESCRIPTION", Segment(
            id="persona_depth", kind=SegmentKind.DEPTH_INJECTION, role=persona.role,
            text=expand_macros(persona.description, ctx).strip(), source=f"persona:{persona.name}",
            depth=persona.depth)))
    for entry in (getattr(lore, "at_depth", []) or []) if lore else []:
        role = _role(getattr(entry, "role", "system"))
        depth = _int(getattr(entry, "depth", 4), 4)
        out.append(_Injection(depth, role, f"customDepthWI-{depth}-{_ROLE_ORDER.index(role)}", Segment(
            id=f"lore:{entry.book}:{entry.uid}", kind=SegmentKind.DEPTH_INJECTION, role=role,
            text=entry.content.strip(), source=f"lore:{entry.book}:{entry.uid}", depth=depth)))
    out = [i for i in out if i.segment.text]
    group = len(cards) > 1 or (roster is not None and len(roster.members) > 1)
    joined = roster is None or roster.generation_mode != "swap"  # swap changes the top anyway
    if group and joined and settings.keyword_lore == "tail":
        _speaker_parts_to_tail(out, note_text=note.text, persona=persona)
    return out


def _speaker_parts_to_tail(out: list[_Injection], *, note_text: str, persona: Persona | None) -> None:
    """In a joined group, injections that differ by who speaks (an author's note or persona
    that says `{{char}}`) go to depth 0, the volatile tail, so the whole history stays one
    prefix whoever speaks next (cache-stable policies only)."""
    for inj in out:
        sid = inj.segment.id
        moves = (sid == "author_note" and "{{char}}" in note_text.lower()) or (
            sid == "persona_depth" and persona is not None and "{{char}}" in persona.description.lower())
        if moves:
            inj.depth = 0
            inj.segment.depth = 0


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _role(value: Any) -> Role:
    if value in ("system", "user", "assistant"):
        return value  # type: ignore[no-any-return]
    if value in (0, 1, 2, "0", "1", "2"):
        return _ROLE_ORDER[int(value)]
    return "system"


def _splice(history: list[Segment], injections: list[_Injection], *, continuing: bool) -> list[Segment]:
    """SillyTavern `doChatInject`: one merged turn per (depth, role), assistant/user/system top-down."""
    if not injections:
        return history
    # Only the newest messages can receive injections: splice into that tail, keep the rest.
    keep = max(0, len(history) - (max(i.depth for i in injections) + 2))
    older, history = history[:keep], history[keep:]
    newest_first: list[list[Segment]] = [[seg] for seg in reversed(history)]
    inserted = 0
    for depth in sorted({i.depth for i in injections}):
        for role in _ROLE_ORDER:
            group = sorted((i for i in injections if i.depth == depth and i.role == role), key=lambda i: i.key)
            if not group:
                continue
            block = f"inject:{depth}:{role}"
            segs: list[Segment] = []
            for k, inj in enumerate(group):
                if k:
                    segs.append(Segment(id=f"{block}:sep{k}", kind=SegmentKind.STRUCTURE, role=role,
                                        text="\n", block=block, pinned=True))
                inj.segment.block = block
                inj.segment.pinned = True
                segs.append(inj.segment)
            at = depth + inserted
            if continuing and depth == 0:
                at += 1
            newest_first.insert(min(at, len(newest_first)), segs)
            inserted += 1
    return older + [seg for unit in reversed(newest_first) for seg in unit]
