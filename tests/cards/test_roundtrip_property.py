"""Lossless on write: cards with random unknown keys and extensions survive every format unchanged."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rp_context.cards import (
    Asset,
    CardData,
    Lorebook,
    LoreEntry,
    card_from_bytes,
    card_to_bytes,
    card_to_dict,
)
from rp_context.safeload import flat_name

FORMATS = ("json", "png", "charx", "yaml")

text = st.text(max_size=40)
json_scalar = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False) | text
json_value = st.recursive(
    json_scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)


def unknown(reserved: set[str]) -> st.SearchStrategy[dict[str, Any]]:
    keys = st.text(min_size=1, max_size=12).filter(lambda k: k not in reserved)
    return st.dictionaries(keys, json_value, max_size=3)


OUTER_RESERVED = {"spec", "spec_version", "data", *CardData.model_fields}
extensions = st.dictionaries(text, json_value, max_size=4)


@st.composite
def entries(draw: st.DrawFn) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "keys": draw(st.lists(text, max_size=3)),
        "content": draw(text),
        "extensions": draw(extensions),
        "enabled": draw(st.booleans()),
        "insertion_order": draw(st.integers(-1000, 1000)),
        "use_regex": draw(st.booleans()),
    }
    for key, strategy in (("case_sensitive", st.none() | st.booleans()), ("constant", st.booleans()),
                          ("id", st.integers(0, 99) | text), ("comment", text), ("priority", st.integers(0, 99)),
                          ("position", st.sampled_from(["before_char", "after_char"])),
                          ("secondary_keys", st.lists(text, max_size=2))):
        if draw(st.booleans()):
            entry[key] = draw(strategy)
    entry.update(draw(unknown(set(LoreEntry.model_fields))))
    return entry


@st.composite
def cards(draw: st.DrawFn) -> dict[str, Any]:
    data: dict[str, Any] = {
        key: draw(text)
        for key in ("name", "description", "personality", "scenario", "first_mes", "mes_example",
                    "creator_notes", "system_prompt", "post_history_instructions", "creator", "character_version")
    }
    data["name"] = "N" + data["name"]  # a card always has a name (an empty one is filled from the file)
    # ...on one line: a name's line breaks are flattened on load, with a warning (issue 17)
    data["name"] = flat_name(data["name"])
    data["alternate_greetings"] = draw(st.lists(text, max_size=3))
    data["tags"] = draw(st.lists(text, max_size=3))
    data["extensions"] = draw(extensions)
    data["group_only_greetings"] = draw(st.lists(text, max_size=2))
    if draw(st.booleans()):
        book: dict[str, Any] = {"extensions": draw(extensions), "entries": draw(st.lists(entries(), max_size=3))}
        if draw(st.booleans()):
            book["name"] = draw(text)
            book["scan_depth"] = draw(st.integers(0, 50))
        book.update(draw(unknown(set(Lorebook.model_fields))))
        data["character_book"] = book
    if draw(st.booleans()):
        data["nickname"] = draw(st.none() | text)
        data["creation_date"] = draw(st.integers(0, 2**31))
        asset = {"type": draw(text), "uri": draw(text), "name": draw(text), "ext": "png"}
        asset.update(draw(unknown(set(Asset.model_fields))))
        data["assets"] = [asset]
    data.update(draw(unknown(set(CardData.model_fields))))
    card = {"spec": "chara_card_v3", "spec_version": "3.0", "data": data}
    card.update(draw(unknown(OUTER_RESERVED)))
    return card


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=cards())
def test_cards_round_trip_through_every_format(doc: dict[str, Any]) -> None:
    first = card_from_bytes(card_to_bytes(card_from_bytes(_json(doc), format="json").card, "json")[0], format="json")
    assert first.warnings == []
    assert card_to_dict(first.card) == doc
    for fmt in FORMATS:
        data, _ = card_to_bytes(first.card, fmt)
        again = card_from_bytes(data, format=fmt)
        assert again.warnings == [], fmt
        assert card_to_dict(again.card) == doc, fmt
        assert again.card.data.extensions == doc["data"]["extensions"], fmt


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=cards())
def test_cards_survive_a_chain_of_formats(doc: dict[str, Any]) -> None:
    # (PNG straight to CHARX adds the avatar as the main icon asset: test_charx_yaml covers that.)
    loaded = card_from_bytes(_json(doc), format="json")
    for fmt in ("png", "yaml", "charx", "json", "charx", "png", "yaml", "json"):
        loaded = card_from_bytes(card_to_bytes(loaded, fmt)[0], format=fmt)
    assert card_to_dict(loaded.card) == doc


def _json(doc: dict[str, Any]) -> bytes:
    import json

    return json.dumps(doc, ensure_ascii=False).encode("utf-8")
