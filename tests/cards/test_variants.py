"""Lenient on read: each real-world card variant loads, with a warning the caller can show."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _cardfiles import v2, v3

from rp_context.cards import Card, card_from_bytes, card_to_dict, load_card


def read(obj: Any, name: str = "card.json") -> Any:
    return card_from_bytes(json.dumps(obj).encode("utf-8"), path=Path(name))


def test_v1_flat_card() -> None:
    loaded = read({"name": "Ada", "description": "d", "personality": "p", "scenario": "s",
                   "first_mes": "hi", "mes_example": "<START>\n{{char}}: x"})
    assert loaded.spec == "v1"
    assert loaded.warnings == []
    d = loaded.card.data
    assert (d.name, d.description, d.first_mes) == ("Ada", "d", "hi")
    assert d.extensions == {} and d.alternate_greetings == [] and d.tags == []
    out = card_to_dict(loaded.card)
    assert out["spec"] == "chara_card_v3" and out["data"]["mes_example"].startswith("<START>")


def test_v1_keeps_its_other_keys_at_the_top_level() -> None:
    loaded = read({"name": "Ada", "description": "", "personality": "", "scenario": "", "first_mes": "",
                   "mes_example": "", "talkativeness": "0.5", "fav": "False", "creatorcomment": "note",
                   "tags": "a, b"})
    assert loaded.card.outer == {"talkativeness": "0.5", "fav": "False", "creatorcomment": "note"}
    assert loaded.card.data.creator_notes == "note"
    assert loaded.card.data.tags == ["a", "b"]


def test_v2_and_v3_cards() -> None:
    two = read(v2(alternate_greetings=["a", "b"]))
    assert two.spec == "v2" and two.warnings == []
    three = read(v3(nickname="Addy", group_only_greetings=["hi all"], creation_date=1700000000,
                    assets=[{"type": "icon", "uri": "ccdefault:", "name": "main", "ext": "png"}]))
    assert three.spec == "v3" and three.warnings == []
    assert three.card.data.nickname == "Addy"
    assert three.card.data.assets is not None and three.card.data.assets[0].uri == "ccdefault:"


def test_hybrid_v1_v2_card_prefers_data() -> None:
    card = v2(mes_example="<START>\nfrom data")
    card.update({"name": "Ada", "description": "Ada is a test character.", "mes_example": "", "avatar": "none"})
    loaded = read(card)
    assert loaded.card.data.mes_example == "<START>\nfrom data"
    assert loaded.card.outer == {"avatar": "none"}
    assert any("top-level mes_example differs from data" in w for w in loaded.warnings)


def test_hybrid_fills_a_missing_data_field_from_the_top_level() -> None:
    card = v2()
    del card["data"]["scenario"]
    card["scenario"] = "A storm."
    loaded = read(card)
    assert loaded.card.data.scenario == "A storm."
    assert "data.scenario was missing; took the top-level copy" in loaded.warnings


def test_null_book() -> None:
    loaded = read(v2(character_book=None))
    assert loaded.card.data.character_book is None
    assert "data.character_book was null; read as no lorebook" in loaded.warnings
    assert "character_book" not in card_to_dict(loaded.card)["data"]


def test_greetings_given_as_a_string() -> None:
    loaded = read(v2(alternate_greetings="Good morning!"))
    assert loaded.card.data.alternate_greetings == ["Good morning!"]
    assert any("data.alternate_greetings was a string" in w for w in loaded.warnings)
    assert read(v2(alternate_greetings="")).card.data.alternate_greetings == []


def test_tags_given_as_a_comma_string() -> None:
    loaded = read(v2(tags="fantasy, female,  elf ,"))
    assert loaded.card.data.tags == ["fantasy", "female", "elf"]
    assert any("data.tags was a comma-separated string" in w for w in loaded.warnings)


def test_numbers_given_as_strings_and_strings_as_numbers() -> None:
    book = {"name": "B", "scan_depth": "4", "token_budget": "512", "recursive_scanning": "false",
            "extensions": {}, "entries": [{"keys": ["k"], "content": "c", "extensions": {},
                                           "enabled": "true", "insertion_order": "100", "priority": "10",
                                           "constant": "False", "id": 7}]}
    loaded = read(v3(character_version=1.0, creation_date="1700000000", character_book=book))
    d = loaded.card.data
    assert d.character_version == "1.0"
    assert d.creation_date == 1700000000
    assert d.character_book is not None
    assert (d.character_book.scan_depth, d.character_book.token_budget) == (4, 512)
    assert d.character_book.recursive_scanning is False
    entry = d.character_book.entries[0]
    assert (entry.enabled, entry.insertion_order, entry.priority, entry.constant, entry.id) == (True, 100, 10, False, 7)
    assert len(loaded.warnings) == 9


def test_missing_extensions_everywhere() -> None:
    card = v2(character_book={"entries": [{"keys": ["k"], "content": "c", "enabled": True, "insertion_order": 1}]})
    del card["data"]["extensions"]
    loaded = read(card)
    d = loaded.card.data
    assert d.extensions == {}
    assert d.character_book is not None
    assert d.character_book.extensions == {} and d.character_book.entries[0].extensions == {}
    assert any("missing extensions" in w for w in loaded.warnings)
    assert "data.character_book.extensions was missing; added an empty object" in loaded.warnings


def test_missing_v2_fields_are_filled() -> None:
    loaded = read({"spec": "chara_card_v2", "spec_version": "2.0", "data": {"name": "Ada", "first_mes": "hi"}})
    assert loaded.card.data.creator_notes == "" and loaded.card.data.tags == []
    assert any(w.startswith("data was missing description") for w in loaded.warnings)


def test_null_text_fields_become_empty() -> None:
    loaded = read(v2(personality=None, scenario=None))
    assert (loaded.card.data.personality, loaded.card.data.scenario) == ("", "")
    assert "data.personality was null; read as empty text" in loaded.warnings


def test_empty_name_comes_from_the_file_name() -> None:
    loaded = read(v2(name=""), name="Captain_Vex.card.json")
    assert loaded.card.data.name == "Captain Vex"
    assert any("no name" in w for w in loaded.warnings)


def test_lorebook_entry_variants() -> None:
    book = {"entries": {"5": {"keys": "alpha, beta", "content": None, "position": 1},
                        "6": {"keys": ["g"], "content": "x", "enabled": True, "insertion_order": 2,
                              "extensions": {}, "secondary_keys": None, "position": "after_char"}}}
    loaded = read(v2(character_book=book))
    b = loaded.card.data.character_book
    assert b is not None
    first, second = b.entries
    assert first.keys == ["alpha", "beta"] and first.content == "" and first.position == "after_char"
    assert first.enabled is True and first.insertion_order == 100
    assert second.secondary_keys is None and second.to_dict()["secondary_keys"] is None
    warnings = " | ".join(loaded.warnings)
    assert "entries was an object keyed by id" in warnings
    assert "entries[0].keys was a comma-separated string" in warnings
    assert "entries[0].position was the number 1" in warnings


def test_odd_spec_labels() -> None:
    loaded = read({"spec": "chara_card_v2", "spec_version": "2", "data": v2()["data"]})
    assert loaded.spec == "v2" and loaded.warnings == []
    unlabeled = read({"data": v2()["data"]})
    assert unlabeled.spec == "v2"
    assert any("card has spec None" in w for w in unlabeled.warnings)
    newer = read({**v3(), "spec_version": "3.1"})
    assert any("newer than 3.0" in w for w in newer.warnings)


def test_pygmalion_style_card() -> None:
    loaded = read({"char_name": "Ada", "char_persona": "A robot.", "char_greeting": "Beep.",
                   "world_scenario": "A lab.", "example_dialogue": "<START>"})
    d = loaded.card.data
    assert (d.name, d.description, d.first_mes, d.scenario) == ("Ada", "A robot.", "Beep.", "A lab.")
    assert any("Pygmalion" in w for w in loaded.warnings)


def test_text_generation_webui_yaml_character(tmp_path: Path) -> None:
    path = tmp_path / "Ada.yaml"
    path.write_text("name: Ada\ngreeting: Hello there.\ncontext: Ada is a robot.\n", encoding="utf-8")
    loaded = load_card(path)
    assert (loaded.card.data.description, loaded.card.data.first_mes) == ("Ada is a robot.", "Hello there.")
    assert any("text-generation-webui" in w for w in loaded.warnings)


def test_bom_and_windows_1252(tmp_path: Path) -> None:
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(v2(name="Zoë"), ensure_ascii=False).encode("utf-8"))
    assert load_card(path).card.data.name == "Zoë"
    cp = tmp_path / "cp.json"
    cp.write_bytes(json.dumps(v2(name="Zoë"), ensure_ascii=False).encode("cp1252"))
    loaded = load_card(cp)
    assert loaded.card.data.name == "Zoë"
    assert any("Windows-1252" in w for w in loaded.warnings)


def test_unknown_keys_everywhere_survive() -> None:
    card = v3(x_data_key={"a": [1, None]}, extensions={"risuai": {"x": 1}, "depth_prompt": {"prompt": "p", "depth": 4}})
    card["x_top"] = "kept"
    card["data"]["character_book"] = {
        "extensions": {"b": 1}, "x_book": True,
        "entries": [{"keys": ["k"], "content": "c", "extensions": {"sticky": None}, "enabled": True,
                     "insertion_order": 0, "use_regex": False, "x_entry": [1, 2]}],
    }
    card["data"]["assets"] = [{"type": "x_custom", "uri": "embeded://a.bin", "name": "n", "ext": "bin", "x_asset": 1}]
    loaded = read(card)
    assert loaded.warnings == []
    assert card_to_dict(loaded.card) == card


def test_model_validation_without_a_file() -> None:
    warnings: list[str] = []
    card = Card.model_validate({"name": "Ada", "tags": "a,b"}, context={"warnings": warnings})
    assert card.data.tags == ["a", "b"] and warnings
    assert Card.model_validate(card.to_dict()) == card


@pytest.mark.parametrize("value", [{"a": 1}, [1, 2]])
def test_a_field_of_the_wrong_shape_is_an_error(value: Any) -> None:
    from rp_context.errors import CardError

    with pytest.raises(CardError, match=r"card.json: data\.name"):
        read(v2(name=value))
