"""Standalone lorebooks, personas and group rosters: rp-context's files and SillyTavern's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rp_context.cards import (
    GroupRoster,
    Lorebook,
    Persona,
    WorldInfo,
    load_lorebook,
    load_persona,
    load_roster,
    save_lorebook,
    save_persona,
    save_roster,
    world_info_from_lorebook,
)
from rp_context.errors import CardError

ST_ENTRY = {
    "uid": 3, "key": ["tower", "/light(house)?/i"], "keysecondary": [], "comment": "The tower", "content": "A tall tower.",
    "constant": False, "vectorized": False, "selective": True, "selectiveLogic": 0, "addMemo": True, "order": 100,
    "position": 4, "disable": False, "excludeRecursion": False, "preventRecursion": False, "delayUntilRecursion": False,
    "probability": 100, "useProbability": True, "depth": 2, "group": "", "groupOverride": False, "groupWeight": 100,
    "scanDepth": None, "caseSensitive": None, "matchWholeWords": None, "useGroupScoring": None, "automationId": "",
    "role": 1, "sticky": 0, "cooldown": 0, "delay": 0, "displayIndex": 3, "matchPersonaDescription": False,
    "triggers": [], "characterFilter": {"isExclude": False, "names": [], "tags": []},
}


def test_sillytavern_world_info_round_trips_exactly(tmp_path: Path) -> None:
    doc = {"entries": {"3": ST_ENTRY}, "originalData": {"name": "x", "entries": []}}
    src = tmp_path / "World.json"
    src.write_text(json.dumps(doc), encoding="utf-8")
    loaded = load_lorebook(src)
    assert loaded.format == "world_info" and loaded.book.name == "World"
    entry = loaded.book.entries[0]
    assert (entry.id, entry.keys, entry.insertion_order, entry.enabled, entry.position) == (3, ["tower", "/light(house)?/i"], 100, True, "after_char")
    assert entry.extensions["position"] == 4 and entry.extensions["depth"] == 2 and entry.extensions["role"] == 1
    assert entry.extensions["characterFilter"] == ST_ENTRY["characterFilter"]  # newer fields ride along
    out = tmp_path / "out.json"
    assert save_lorebook(loaded, out) == []
    assert json.loads(out.read_text(encoding="utf-8")) == doc


def test_card_book_to_world_info_and_back(tmp_path: Path) -> None:
    world = WorldInfo.model_validate({"entries": {"3": ST_ENTRY}})
    book = world.to_lorebook("W")
    back, warnings = world_info_from_lorebook(book)
    assert warnings == []
    assert back.entries["3"].to_dict() == ST_ENTRY


def test_an_edited_world_is_saved_from_the_edit(tmp_path: Path, reference_dir: Path) -> None:
    loaded = load_lorebook(reference_dir / "sillytavern" / "worlds" / "Eldoria.json")
    loaded.book.entries[0].content = "Changed."
    out = tmp_path / "e.json"
    save_lorebook(loaded, out)
    assert json.loads(out.read_text(encoding="utf-8"))["entries"]["0"]["content"] == "Changed."


def test_lorebook_v3_bare_book_and_yaml(tmp_path: Path) -> None:
    book = Lorebook.model_validate({"name": "B", "entries": [{"keys": ["a"], "content": "x", "priority": 3, "x_kept": 1}]})
    for name, fmt in (("b.json", "lorebook_v3"), ("bare.json", "character_book"), ("b.yaml", "yaml")):
        path = tmp_path / name
        save_lorebook(book, path, format=fmt)
        loaded = load_lorebook(path)
        assert loaded.format == fmt
        assert loaded.book.to_dict() == book.to_dict()
    assert json.loads((tmp_path / "b.json").read_text(encoding="utf-8"))["spec"] == "lorebook_v3"
    warnings = save_lorebook(book, tmp_path / "st.json", format="world_info")
    assert warnings and "priority" in warnings[0] and "x_kept" in warnings[0]


def test_lorebook_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"entries": ', encoding="utf-8")
    with pytest.raises(CardError, match="invalid JSON"):
        load_lorebook(bad)
    card = tmp_path / "card.json"
    card.write_text(json.dumps({"spec": "chara_card_v2", "data": {"name": "A"}}), encoding="utf-8")
    with pytest.raises(CardError, match="character card, not a lorebook"):
        load_lorebook(card)


# ---------------------------------------------------------------------------------- personas


def test_persona_yaml_and_json(tmp_path: Path) -> None:
    persona = Persona(name="Sam", description="{{user}} is a surveyor.", position="at_depth", depth=3, role="user")
    for name in ("p.yaml", "p.json"):
        save_persona(persona, tmp_path / name)
        loaded = load_persona(tmp_path / name)
        assert loaded.persona == persona and loaded.warnings == []
    assert (tmp_path / "p.yaml").read_text(encoding="utf-8").startswith("# A user persona")


def test_sillytavern_persona_backup(tmp_path: Path) -> None:
    backup = {
        "personas": {"user-default.png": "Sam", "1700000000-Kit.png": "Kit"},
        "persona_descriptions": {
            "user-default.png": {"description": "Sam desc", "position": 0},
            "1700000000-Kit.png": {"description": "Kit desc", "position": 4, "depth": 2, "role": 1, "lorebook": "Kit's World"},
        },
        "default_persona": "1700000000-Kit.png",
    }
    path = tmp_path / "personas_20240101.json"
    path.write_text(json.dumps(backup), encoding="utf-8")
    kit = load_persona(path).persona
    assert (kit.name, kit.position, kit.depth, kit.role, kit.lorebook) == ("Kit", "at_depth", 2, "user", "Kit's World")
    assert load_persona(path, name="Sam").persona.position == "in_prompt"
    with pytest.raises(CardError, match="no persona named 'Zed'"):
        load_persona(path, name="Zed")


# ----------------------------------------------------------------------------------- rosters

ST_GROUP = {
    "id": "1700000000000", "name": "Tavern", "members": ["Seraphina.png", "Wren.png", "Toby.png"],
    "avatar_url": "", "allow_self_responses": False, "activation_strategy": 3, "generation_mode": 2,
    "disabled_members": ["Toby.png"], "chat_metadata": {"note_prompt": ""}, "fav": False,
    "chat_id": "1700000000000", "chats": ["1700000000000"], "auto_mode_delay": 5,
    "generation_mode_join_prefix": "<{{char}}>", "generation_mode_join_suffix": "</{{char}}>",
    "hideMutedSprites": False, "past_metadata": {},
}


def test_sillytavern_group_reads_and_writes_back_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "1700000000000.json"
    path.write_text(json.dumps(ST_GROUP), encoding="utf-8")
    loaded = load_roster(path)
    r = loaded.roster
    assert loaded.format == "sillytavern" and loaded.warnings == []
    assert (r.activation, r.generation_mode, r.muted) == ("pooled", "join_with_muted", ["Toby.png"])
    assert (r.join_prefix, r.join_suffix) == ("<{{char}}>", "</{{char}}>")
    assert r.active_members() == ["Seraphina.png", "Wren.png"]
    assert loaded.member_paths() == [tmp_path / m for m in ST_GROUP["members"]]
    out = tmp_path / "out.json"
    save_roster(loaded, out)
    assert json.loads(out.read_text(encoding="utf-8")) == ST_GROUP


def test_roster_yaml_round_trip_and_export_to_sillytavern(tmp_path: Path) -> None:
    roster = GroupRoster(name="G", members=["a.json", "b.png"], muted=["b.png"], activation="list", generation_mode="join")
    save_roster(roster, tmp_path / "g.yaml")
    assert load_roster(tmp_path / "g.yaml").roster == roster
    save_roster(roster, tmp_path / "st.json", format="sillytavern")
    st = json.loads((tmp_path / "st.json").read_text(encoding="utf-8"))
    assert (st["activation_strategy"], st["generation_mode"], st["disabled_members"]) == (1, 1, ["b.png"])
    assert st["id"] and st["chat_id"] == st["id"] and st["chats"] == [st["id"]]
    again = load_roster(tmp_path / "st.json")
    assert again.format == "sillytavern" and again.roster.members == roster.members


def test_roster_leniency(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("kind: roster\nname: R\nmembers: solo.json\nmuted: [ghost.json]\nactivation: LIST\n"
                    "generation_mode: join including muted\nallow_self_responses: 'yes'\n", encoding="utf-8")
    loaded = load_roster(path)
    r = loaded.roster
    assert (r.members, r.activation, r.generation_mode, r.allow_self_responses) == (["solo.json"], "list", "join_with_muted", True)
    assert any("ghost.json" in w for w in loaded.warnings)


def test_roster_errors(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("kind: persona\nname: Sam\n", encoding="utf-8")
    with pytest.raises(CardError, match="not a group roster"):
        load_roster(path)
    path.write_text("name: nobody\n", encoding="utf-8")
    with pytest.raises(CardError, match="no members"):
        load_roster(path)
