"""Character cards, lorebooks, personas and group rosters: every real-world file in, nothing lost out.

    from rp_context.cards import load_card, save_card
    loaded = load_card("Seraphina.png")          # JSON V1/V2/V3, PNG, CHARX or YAML
    print(loaded.card.data.name, loaded.warnings)
    save_card(loaded, "Seraphina.charx")
"""

from __future__ import annotations

from .io import (
    DEFAULT_LIMITS,
    CardFile,
    CardFormat,
    CardLimits,
    card_from_bytes,
    card_to_bytes,
    card_to_yaml,
    detect_card_format,
    load_card,
    save_card,
)
from .lorebook import (
    LorebookFile,
    WorldInfo,
    WorldInfoEntry,
    load_lorebook,
    lorebook_from_dict,
    save_lorebook,
    world_info_from_lorebook,
)
from .model import Asset, Card, CardData, Lorebook, LoreEntry, card_spec, card_to_dict
from .persona import Persona, PersonaFile, load_persona, save_persona
from .roster import GroupRoster, RosterFile, load_roster, roster_from_st, roster_to_st, save_roster

__all__ = [
    "Asset",
    "Card",
    "CardData",
    "CardFile",
    "CardFormat",
    "CardLimits",
    "DEFAULT_LIMITS",
    "GroupRoster",
    "LoreEntry",
    "Lorebook",
    "LorebookFile",
    "Persona",
    "PersonaFile",
    "RosterFile",
    "WorldInfo",
    "WorldInfoEntry",
    "card_from_bytes",
    "card_spec",
    "card_to_bytes",
    "card_to_dict",
    "card_to_yaml",
    "detect_card_format",
    "load_card",
    "load_lorebook",
    "load_persona",
    "load_roster",
    "lorebook_from_dict",
    "roster_from_st",
    "roster_to_st",
    "save_card",
    "save_lorebook",
    "save_persona",
    "save_roster",
    "world_info_from_lorebook",
]
