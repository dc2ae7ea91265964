"""`assemble`: the stages in order, each a function of the values the earlier ones produced."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from .._types import Mode
from ..cards.model import Card, Lorebook
from ..cards.persona import Persona
from ..cards.roster import GroupRoster
from ..chat import Chat
from ..chatcontext import FROZEN_KEY
from ..presets.models import ContextPreset, SysPromptPreset
from ..segments import Segment
from ..templates.model import InstructTemplate
from ..tokens import TokenCounter
from .examples import chat_start_segments, example_blocks, example_segments
from .history import AssemblyCache, chat_texts, memory_segment
from .identity import resolve_identity
from .lore import activate_lore, place_lore
from .model import AssembledPrompt, AssemblySettings, Request
from .story import card_texts, story_segments
from .tail import closing_segments, injections, splice, stop_strings

__all__ = ["assemble"]


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
    counter: TokenCounter | None = None,
    max_context: int = 8192,
    now: datetime | None = None,
    cache: AssemblyCache | None = None,
) -> AssembledPrompt:
    """Build the prompt's segments for the next reply by `speaker` (default: the only card).

    `counter` counts world info against its budget (tiktoken when None); `max_context` is the
    window that budget is a share of; `now` fixes the time macros; `cache` (one per chat, kept
    by the caller) lets a turn reuse what the earlier turns converted.
    """
    req = Request(cards, chat, instruct, context, sysprompt, persona, roster, lorebooks,
                  settings or AssemblySettings(), mode, counter, max_context, now)
    cache = cache if cache is not None else AssemblyCache()
    warnings: list[str] = []
    ident = resolve_identity(req, speaker, warnings, cache.macros)     # 1 identity
    card = card_texts(req, ident)                                      # 2 card and preset texts
    texts = chat_texts(req, ident, cache)                              # 3 message texts
    lore = activate_lore(req, ident, texts)                            # 4 world info
    placed = place_lore(lore, req.settings.keyword_lore)
    examples = example_blocks(req, card.fields, lore)
    head: list[Segment] = story_segments(req, ident, card, placed, examples)  # 5 story string
    head += example_segments(req, ident, examples)                     # 6 examples, chat start
    head += chat_start_segments(req, ident, head)
    memories = cache.memories()                                        # 7 memory and history
    memory = memory_segment(memories)
    segments = cache.segments(texts, ident.user)                       # a new list: built on in place
    extras = injections(req, ident, placed, texts.visible)             # 8 the tail
    splice(segments, extras, continuing=mode == "continue")
    closing_segments(req, ident, card, segments, texts.prefill)
    segments[:0] = [*head, *memory]  # moves the history up in C, no copy of it
    return AssembledPrompt(
        segments=segments, template=instruct, user=ident.user, char=ident.speaker,
        group=ident.group, members=ident.members, mode=mode, stop=stop_strings(req), lore=lore,
        warnings=warnings,
        frozen_changed=texts.frozen_changed or repr(ident.meta.get(FROZEN_KEY)) != ident.frozen_before,
        memories=memories,
    )
