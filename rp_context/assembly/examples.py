"""Stage 6, example dialogues and chat start: `<START>` blocks from the cards and world info,
as turns of the template (or raw text in a system story string), then the chat-start line."""

from __future__ import annotations

import re
from collections.abc import Sequence

from .._types import Role
from ..macros import expand_macros
from ..segments import Segment, SegmentKind
from ..worldinfo import WorldInfoResult
from .model import Fields, Identity, Request

__all__ = ["parse_examples", "example_blocks", "example_segments", "chat_start_segments"]


def parse_examples(text: str) -> list[str]:
    """SillyTavern `parseMesExamples`: split on `<START>` into blocks (each without its heading)."""
    if not text or text.strip() == "<START>":
        return []
    if not text.lstrip().upper().startswith("<START>"):
        text = "<START>\n" + text
    blocks = re.split(r"<START>", text, flags=re.IGNORECASE)[1:]
    return [b.strip() for b in blocks if b.strip()]


def example_blocks(req: Request, fields: Fields, lore: WorldInfoResult | None) -> list[tuple[str, str]]:
    """(owner, block) for every example block: world info's top ones, the cards', its bottom ones."""
    if not req.settings.include_examples:
        return []
    blocks: list[tuple[str, str]] = []
    for entry in lore.examples_top if lore else []:
        blocks += [("lore", b) for b in parse_examples(entry.content)]
    for owner, text in fields.get("mes_example", []):
        blocks += [(owner, b) for b in parse_examples(text)]
    for entry in lore.examples_bottom if lore else []:
        blocks += [("lore", b) for b in parse_examples(entry.content)]
    return blocks


def example_segments(req: Request, ident: Identity, blocks: Sequence[tuple[str, str]]) -> list[Segment]:
    """Each block as one raw segment (system story string), or a heading and one segment per turn
    (raw text when no line names the user or the speaker, or the template skips examples)."""
    context = req.context
    heading = (context.example_separator + "\n") if context.example_separator else "<START>\n"
    out: list[Segment] = []
    for b, (owner, block) in enumerate(blocks):
        text = expand_macros(block, ident.ctx())
        source = f"card:{owner}:mes_example"
        if context.story_string_as_system:
            out.append(Segment(id=f"example:{b}", kind=SegmentKind.EXAMPLE_DIALOGUE, role="system",
                               text="\n" + heading + text, source=source, block="story",
                               extra={"example_block": str(b)}))
            continue
        turns = None if req.instruct.skip_examples else _example_turns(text, ident.user, ident.speaker)
        if turns is None:
            out.append(Segment(id=f"example:{b}:heading", kind=SegmentKind.EXAMPLE_DIALOGUE,
                               text=heading + text + "\n", special=False, source=source,
                               block=f"example:{b}"))
            continue
        out.append(Segment(id=f"example:{b}:heading", kind=SegmentKind.EXAMPLE_DIALOGUE, text=heading,
                           special=True, source=f"preset:context/{context.name}", block=f"example:{b}"))
        out += [Segment(id=f"example:{b}:{t}", kind=SegmentKind.EXAMPLE_DIALOGUE, role=role, name=name,
                        text=turn, source=source, block=None, extra={"example_block": str(b)})
                for t, (role, name, turn) in enumerate(turns)]
    return out


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


def chat_start_segments(req: Request, ident: Identity, before: Sequence[Segment]) -> list[Segment]:
    """The chat-start line (none when the preset has none); in a system story string it starts
    a line of its own after `before`, the segments so far."""
    context = req.context
    if not context.chat_start:
        return []
    as_system = context.story_string_as_system
    out: list[Segment] = []
    if as_system and before and not before[-1].text.endswith("\n"):
        out.append(Segment(id=f"story:break:{len(before)}", kind=SegmentKind.STORY_STRING,
                           role="system", text="\n", special=True, pinned=True, block="story"))
    expanded = expand_macros(context.chat_start, ident.ctx())
    out.append(Segment(
        id="chat_start", kind=SegmentKind.CHAT_START, role="system" if as_system else None,
        text=expanded + ("" if as_system else "\n"),
        special=expanded == context.chat_start,  # names expanded into it are content
        pinned=True, source=f"preset:context/{context.name}", block="story" if as_system else None,
    ))
    return out
