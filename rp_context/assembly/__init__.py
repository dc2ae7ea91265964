"""Assembly: cards, persona, chat and presets into typed segments, in SillyTavern's order.

The order (SillyTavern 1.12.6, `sillytavern.md` §3): story string (system prompt, world info
before, description, personality, scenario, world info after, persona), example dialogues,
chat start, the chat history with depth injections (author's note, character's note, world info
at depth, persona at depth) spliced in, post-history instructions, and the generation header.
Only the tail moves from turn to turn; macros that would change the prompt under llama.cpp's
cache are frozen per message.

`assemble` (in `build.py`) runs the stages in order, each in its own module:

1. `identity`: the chat's id, the user's name, the cast, the speaker, the macro context;
2. `story.card_texts`: card fields, persona, system prompt, post-history instructions;
3. `history.chat_texts`: each visible message's text (macros, reasoning rules);
4. `lore`: the world-info scan and where its entries go;
5. `story.story_segments`: the context preset's story string, one segment per value;
6. `examples`: example dialogues and the chat-start line;
7. `history`: the stored memory and one segment per message (`AssemblyCache` reuses them);
8. `tail`: depth injections spliced into the history, post-history, generation header.

`AssemblyCache` (in `history.py`) carries a chat from turn to turn: `columns` compares the
chat's messages with the last turn's in C, `turn` keeps the visible messages, their texts and
segments, cut back to the first change; a warm turn of a long chat does Python work only for
the messages that are new or changed.

The stages pass frozen values (`model.Request`, `Identity`, `CardTexts`, `ChatTexts`,
`LorePlacement`); segments are frozen too.
"""

from __future__ import annotations

from .build import assemble
from .examples import parse_examples
from .history import AssemblyCache
from .model import AssembledPrompt, AssemblySettings, AuthorNote

__all__ = [
    "AuthorNote",
    "AssemblySettings",
    "AssembledPrompt",
    "AssemblyCache",
    "assemble",
    "parse_examples",
]
