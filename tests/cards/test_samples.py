"""The characters, roster and persona the project ships load cleanly and are complete examples."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from rp_context.cards import card_to_dict, load_card, load_persona, load_roster

CARDS = Path(__file__).resolve().parents[2] / "cards"
CHARACTERS = ["wren-halloway.json", "tobias-marrow.png", "absalom-pike.yaml"]


@pytest.mark.parametrize("name", CHARACTERS)
def test_each_character_loads_without_repairs_and_is_complete(name: str) -> None:
    loaded = load_card(CARDS / name)
    assert loaded.warnings == []
    d = loaded.card.data
    for field in ("name", "description", "personality", "scenario", "first_mes", "mes_example", "creator_notes"):
        assert getattr(d, field).strip(), field
    assert d.mes_example.startswith("<START>") and d.mes_example.count("<START>") >= 2
    assert d.alternate_greetings, "offer at least one alternate greeting"
    assert d.creator == "rp-context" and "original" in d.tags
    assert "{{char}}" in d.description and "{{user}}" in d.scenario


def test_three_formats_are_shipped() -> None:
    assert {load_card(CARDS / n).format for n in CHARACTERS} == {"json", "png", "yaml"}


def test_the_png_card_is_v3_with_a_real_painted_image() -> None:
    loaded = load_card(CARDS / "tobias-marrow.png")
    assert loaded.chunk == "ccv3" and loaded.spec == "v3"
    assert loaded.image is not None
    with Image.open(io.BytesIO(loaded.image)) as im:
        assert im.size == (400, 600)
        colours = im.convert("RGB").getcolors(maxcolors=1_000_000)
    assert colours is not None and len(colours) > 1000  # a picture, not a flat placeholder
    d = loaded.card.data
    assert d.group_only_greetings and d.character_book is not None and len(d.character_book.entries) >= 5
    # the V2 backfill chunk carries the same card for older readers
    from rp_context.cards.png import decode_payload, find_card_chunks

    chunks = find_card_chunks((CARDS / "tobias-marrow.png").read_bytes(), None, lambda _m: None, max_text=1 << 24)
    assert set(chunks) == {"chara", "ccv3"}
    import json

    v2 = json.loads(decode_payload(chunks["chara"], None, lambda _m: None, max_bytes=1 << 24))
    assert v2["spec"] == "chara_card_v2" and v2["data"] == card_to_dict(loaded.card)["data"]


def test_the_roster_names_the_three_characters() -> None:
    loaded = load_roster(CARDS / "skerry-light.roster.yaml")
    assert loaded.warnings == []
    paths = loaded.member_paths()
    assert [p.name for p in paths] == CHARACTERS
    names = [load_card(p).card.data.name for p in paths]
    assert names == ["Wren Halloway", "Tobias Marrow", "Absalom Pike"]
    r = loaded.roster
    assert r.generation_mode == "join" and r.activation == "natural" and "<FIELDNAME>" in r.join_prefix


def test_the_persona() -> None:
    loaded = load_persona(CARDS / "sam-ashdown.persona.yaml")
    assert loaded.warnings == []
    assert loaded.persona.name == "Sam Ashdown" and "{{user}}" in loaded.persona.description
    assert loaded.persona.position == "in_prompt"
