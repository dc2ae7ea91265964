"""Helpers for the world-info tests: SillyTavern-style books built through the real WI converter."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rp_context.cards.lorebook import WorldInfo, WorldInfoEntry
from rp_context.cards.model import Lorebook
from rp_context.tokens import TiktokenCounter
from rp_context.worldinfo import WorldInfoResult, WorldInfoSettings, activate_world_info


@dataclass(frozen=True)
class Msg:
    name: str
    text: str


def entry(uid: int, keys: list[str], content: str, **fields: Any) -> dict[str, Any]:
    """A SillyTavern world-info entry with every default SillyTavern writes, overridden by `fields`."""
    return WorldInfoEntry.new(uid, keys, content, **fields).to_dict()


def book(*entries: dict[str, Any], name: str = "Test") -> Lorebook:
    """A card-style lorebook converted from SillyTavern world info, as a user's file would be."""
    world = WorldInfo.model_validate({"entries": {str(e["uid"]): e for e in entries}})
    return world.to_lorebook(name)


def chat(*texts: str) -> list[Msg]:
    """Messages alternating User / Char, oldest first."""
    return [Msg("User" if i % 2 == 0 else "Char", t) for i, t in enumerate(texts)]


_COUNTER: TiktokenCounter | None = None


def counter() -> TiktokenCounter:
    global _COUNTER
    if _COUNTER is None:
        _COUNTER = TiktokenCounter()
    return _COUNTER


def scan(
    books: Lorebook | list[Lorebook],
    messages: list[Msg],
    *,
    seed: str = "seed",
    ctx: int = 8192,
    extra: tuple[str, ...] = (),
    macro_ctx: Any = None,
    timed: dict[str, Any] | None = None,
    token_counter: Any = None,
    **settings: Any,
) -> WorldInfoResult:
    return activate_world_info(
        books if isinstance(books, list) else [books],
        messages,
        settings=WorldInfoSettings(**settings),
        counter=token_counter or counter(),
        max_context_tokens=ctx,
        seed=seed,
        macro_ctx=macro_ctx,
        extra_scan_text=extra,
        timed_effects=timed,
    )


def status(result: WorldInfoResult, uid: int, book_name: str = "Test") -> str:
    return result.decision(f"{book_name}.{uid}").status


def fired_uids(result: WorldInfoResult) -> set[int | str]:
    return {e.uid for e in result.fired}


