"""Every card under ../shared/reference loads, and Seraphina survives PNG → JSON → CHARX → PNG → JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rp_context.cards import (
    card_to_dict,
    load_card,
    load_lorebook,
    save_card,
    save_lorebook,
)


@pytest.fixture(scope="module")
def seraphina_png(reference_dir: Path) -> Path:
    return reference_dir / "sillytavern" / "cards" / "default_Seraphina.png"


@pytest.fixture(scope="module")
def seraphina_json(reference_dir: Path) -> Path:
    return reference_dir / "sillytavern" / "cards" / "default_Seraphina.card.json"


@pytest.fixture(scope="module")
def eldoria(reference_dir: Path) -> Path:
    return reference_dir / "sillytavern" / "worlds" / "Eldoria.json"


def test_seraphina_png_loads(seraphina_png: Path) -> None:
    loaded = load_card(seraphina_png)
    assert (loaded.format, loaded.spec, loaded.chunk) == ("png", "v2", "chara")
    data = loaded.card.data
    assert data.name == "Seraphina"
    assert data.creator == "OtisAlejandro"
    assert data.extensions == {"talkativeness": "0.5", "fav": False, "world": "Eldoria"}
    assert data.character_book is not None and len(data.character_book.entries) == 4
    assert "\r\n" in data.description  # text is kept exactly, line endings included
    # SillyTavern's own top-level keys are kept for the round trip
    assert set(loaded.card.outer) == {"avatar", "chat", "create_date", "talkativeness", "fav", "creatorcomment"}
    # the one real-world mistake in it: the book has no `extensions`
    assert loaded.warnings == ["data.character_book.extensions was missing; added an empty object"]
    assert loaded.image == seraphina_png.read_bytes()


def test_seraphina_json_is_the_png_card(seraphina_png: Path, seraphina_json: Path) -> None:
    from_png = load_card(seraphina_png)
    from_json = load_card(seraphina_json)
    assert from_json.format == "json"
    assert card_to_dict(from_json.card) == card_to_dict(from_png.card)


def test_seraphina_book_entries_keep_sillytavern_extensions(seraphina_png: Path) -> None:
    book = load_card(seraphina_png).card.data.character_book
    assert book is not None
    first = book.entries[0]
    assert first.keys == ["eldoria", "wood", "forest", "magical forest"]
    assert first.position == "before_char"
    assert first.extensions == {"position": 0, "probability": None, "useProbability": False}
    assert first.to_dict()["extensions"]["probability"] is None  # explicit null stays null


def test_png_json_charx_png_json_gives_the_first_json(seraphina_png: Path, tmp_path: Path) -> None:
    first_json = tmp_path / "1.json"
    save_card(load_card(seraphina_png), first_json)
    save_card(load_card(first_json), tmp_path / "2.charx")
    save_card(load_card(tmp_path / "2.charx"), tmp_path / "3.png")
    save_card(load_card(tmp_path / "3.png"), tmp_path / "4.json")
    first = json.loads(first_json.read_text(encoding="utf-8"))
    last = json.loads((tmp_path / "4.json").read_text(encoding="utf-8"))
    assert last == first
    assert first_json.read_bytes() == (tmp_path / "4.json").read_bytes()
    # and that data is the reference card's, upgraded to V3
    reference = json.loads(seraphina_png.with_name("default_Seraphina.card.json").read_text(encoding="utf-8"))
    assert first["spec"] == "chara_card_v3"
    for key, value in reference["data"].items():
        if key != "character_book":
            assert first["data"][key] == value, key
    for ours, theirs in zip(first["data"]["character_book"]["entries"], reference["data"]["character_book"]["entries"], strict=True):
        assert {k: v for k, v in ours.items() if k != "use_regex"} == theirs
    for key in ("avatar", "chat", "create_date", "talkativeness", "fav", "creatorcomment"):
        assert first[key] == reference[key]


def test_seraphina_png_to_png_keeps_the_image(seraphina_png: Path, tmp_path: Path) -> None:
    from PIL import Image

    out = tmp_path / "copy.png"
    assert save_card(load_card(seraphina_png), out) == []
    with Image.open(seraphina_png) as a, Image.open(out) as b:
        assert a.size == b.size and a.tobytes() == b.tobytes()
    again = load_card(out)
    assert again.chunk == "ccv3"  # we write both chunks; ccv3 wins
    assert card_to_dict(again.card) == card_to_dict(load_card(seraphina_png).card)


def test_eldoria_lorebook_loads(eldoria: Path) -> None:
    loaded = load_lorebook(eldoria)
    assert loaded.format == "world_info"
    assert loaded.warnings == []
    assert loaded.book.name == "Eldoria"
    assert len(loaded.book.entries) == 4
    assert loaded.world is not None and list(loaded.world.entries) == ["0", "1", "2", "3"]


def test_eldoria_saves_back_unchanged(eldoria: Path, tmp_path: Path) -> None:
    out = tmp_path / "Eldoria.json"
    assert save_lorebook(load_lorebook(eldoria), out) == []
    assert json.loads(out.read_text(encoding="utf-8")) == json.loads(eldoria.read_text(encoding="utf-8"))


def test_eldoria_converts_like_sillytavern_embedded_it(eldoria: Path, seraphina_png: Path) -> None:
    """Seraphina's character_book is SillyTavern's own conversion of Eldoria: the core matches."""
    ours = load_lorebook(eldoria).book
    embedded = load_card(seraphina_png).card.data.character_book
    assert embedded is not None
    core = ("id", "keys", "secondary_keys", "comment", "content", "constant", "selective", "insertion_order", "enabled", "position")
    for a, b in zip(ours.entries, embedded.entries, strict=True):
        assert {k: getattr(a, k) for k in core} == {k: getattr(b, k) for k in core}
        assert a.extensions["position"] == b.extensions["position"]
