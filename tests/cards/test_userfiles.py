"""One rule for which kind a file is (the command line and the app share it), and importing a file
into the user's folders: checked first, copied atomically, never over another file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rp_context.errors import CardError
from rp_context.paths import bundled_dir
from rp_context.userfiles import detect_kind, import_file


def folders(root: Path) -> dict[str, Path]:
    return {"cards": root / "cards", "personas": root / "personas", "presets": root / "presets"}


def test_the_sample_files_are_what_they_say() -> None:
    kinds = {p.name: detect_kind(p) for p in bundled_dir("cards").iterdir()}
    assert kinds == {"sam-ashdown.persona.yaml": "persona", "skerry-light.roster.yaml": "roster",
                     "tobias-marrow.png": "card", "wren-halloway.json": "card",
                     "absalom-pike.yaml": "card"}


@pytest.mark.parametrize(("name", "text", "kind"), [
    ("crew.roster.yaml", "name: Crew\nmembers: [a.json]\n", "roster"),  # named so, no kind key
    ("me.persona.yml", "name: Tess\n", "persona"),
    ("group.json", json.dumps({"members": ["a.png"], "generation_mode": 0}), "roster"),
    ("personas.json", json.dumps({"personas": {}, "persona_descriptions": {}}), "persona"),
    ("book.json", json.dumps({"entries": {"0": {"key": ["x"], "content": "y"}}}), "lorebook"),
    ("chat.jsonl", '{"user_name": "U", "character_name": "C"}\n{"mes": "hi"}\n', "chat"),
    ("card.json", json.dumps({"name": "Ann", "first_mes": "Hi"}), "card"),
    ("broken.json", "{not json", "card"),  # the card loader says what is wrong
])
def test_detect_kind(tmp_path: Path, name: str, text: str, kind: str) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    assert detect_kind(path) == kind


def test_a_card_is_copied_byte_for_byte_once(tmp_path: Path) -> None:
    src = bundled_dir("cards") / "tobias-marrow.png"
    first = import_file(src, **folders(tmp_path))
    assert first.kind == "card" and first.path.parent == tmp_path / "cards"
    assert first.path.read_bytes() == src.read_bytes()
    again = import_file(src, **folders(tmp_path))
    assert again.path == first.path  # the same file again is not copied twice
    assert [p.name for p in (tmp_path / "cards").iterdir()] == [src.name]


def test_a_persona_goes_to_the_personas(tmp_path: Path) -> None:
    result = import_file(bundled_dir("cards") / "sam-ashdown.persona.yaml", **folders(tmp_path))
    assert (result.kind, result.name, result.path.parent) == ("persona", "Sam Ashdown",
                                                              tmp_path / "personas")


@pytest.mark.parametrize(("name", "text", "says"), [
    ("crew.roster.yaml", "kind: roster\nname: Crew\nmembers: [a.json]\n", "--roster"),
    ("book.json", json.dumps({"entries": {"0": {"key": ["x"], "content": "y"}}}), "lorebook"),
])
def test_what_cannot_be_imported_writes_nothing(tmp_path: Path, name: str, text: str,
                                                says: str) -> None:
    src = tmp_path / name
    src.write_text(text, encoding="utf-8")
    home = tmp_path / "home"
    with pytest.raises(CardError, match=says):
        import_file(src, **folders(home))
    assert not home.exists()
