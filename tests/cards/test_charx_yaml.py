"""CHARX keeps its assets and icon; rp-context's YAML card is readable and lossless."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from _cardfiles import base_png, charx, v2, v3

from rp_context.cards import (
    Card,
    card_from_bytes,
    card_to_bytes,
    card_to_dict,
    card_to_yaml,
    load_card,
    save_card,
)


def test_charx_reads_card_json_and_keeps_every_asset(tmp_path: Path) -> None:
    icon = base_png((6, 6), (10, 200, 30))
    doc = v3("Risu", assets=[
        {"type": "icon", "uri": "embeded://assets/icon/images/main.png", "name": "main", "ext": "png"},
        {"type": "emotion", "uri": "embeded://assets/emotion/images/happy.png", "name": "happy", "ext": "png"},
    ])
    members = {
        "card.json": json.dumps(doc).encode(),
        "assets/icon/images/main.png": icon,
        "assets/emotion/images/happy.png": b"\x89PNG fake",
        "module.risum": b"\x00\x01risu module",
    }
    path = tmp_path / "risu.charx"
    path.write_bytes(charx(members))
    loaded = load_card(path)
    assert loaded.format == "charx" and loaded.spec == "v3" and loaded.warnings == []
    assert loaded.image == icon
    assert set(loaded.assets) == {"assets/icon/images/main.png", "assets/emotion/images/happy.png", "module.risum"}
    out = tmp_path / "copy.charx"
    assert save_card(loaded, out) == []
    with zipfile.ZipFile(out) as zf:
        assert zf.namelist()[0] == "card.json"
        for name, data in members.items():
            if name != "card.json":
                assert zf.read(name) == data
        assert json.loads(zf.read("card.json")) == doc


def test_charx_assets_cannot_go_into_png_and_we_say_so(tmp_path: Path) -> None:
    doc = v3("Risu", assets=[{"type": "icon", "uri": "embeded://assets/icon/images/main.png", "name": "main", "ext": "png"}])
    path = tmp_path / "r.charx"
    path.write_bytes(charx({"card.json": json.dumps(doc).encode(), "assets/icon/images/main.png": base_png(),
                            "assets/other/other/x.bin": b"x"}))
    warnings = save_card(load_card(path), tmp_path / "r.png")
    assert len(warnings) == 1 and "assets/other/other/x.bin" in warnings[0]
    assert load_card(tmp_path / "r.png").image is not None


def test_png_to_charx_embeds_the_avatar_as_the_main_icon(tmp_path: Path) -> None:
    image = base_png((5, 7))
    card = Card.model_validate(v2("Pic"))
    png, _ = card_to_bytes(card, "png", image=image)
    loaded = card_from_bytes(png)
    data, warnings = card_to_bytes(loaded, "charx")
    assert warnings == []
    again = card_from_bytes(data, format="charx")
    assert again.card.data.assets is not None
    assert again.card.data.assets[0].to_dict() == {
        "type": "icon", "uri": "embeded://assets/icon/images/main.png", "name": "main", "ext": "png"}
    assert again.image == png  # the avatar is the PNG (with its card chunks, harmless)
    back = card_from_bytes(card_to_bytes(again, "png")[0])
    assert card_to_dict(back.card) == card_to_dict(again.card)


def test_charx_without_assets_and_a_conventional_icon() -> None:
    icon = base_png()
    loaded = card_from_bytes(charx({"card.json": json.dumps(v3()).encode(), "assets/icon/images/x.png": icon}))
    assert loaded.image == icon


def test_charx_with_a_v2_card_json_warns() -> None:
    loaded = card_from_bytes(charx({"card.json": json.dumps(v2()).encode()}))
    assert any("not chara_card_v3" in w for w in loaded.warnings)


def test_charx_written_is_deterministic() -> None:
    card = Card.model_validate(v3())
    assert card_to_bytes(card, "charx")[0] == card_to_bytes(card, "charx")[0]
    with zipfile.ZipFile(io.BytesIO(card_to_bytes(card, "charx")[0])) as zf:
        assert zf.namelist() == ["card.json"]


def test_yaml_card_is_flat_readable_and_lossless(tmp_path: Path) -> None:
    doc = v3("Yam", description="Line one.\nLine two.\n", first_mes="Hi\r\nthere", extensions={"a": {"b": None}},
             x_unknown=[1, "two"])
    doc["x_top"] = {"k": "v"}
    card = Card.model_validate(doc)
    text = card_to_yaml(card)
    assert "kind: card\nversion: 1\nname: Yam\n" in text
    assert "description: |\n  Line one.\n  Line two.\n" in text
    assert "first_mes: |-\n  Hi\n  there\n" in text and "crlf_fields" in text
    assert "top_level:\n  x_top:" in text
    path = tmp_path / "yam.yaml"
    save_card(card, path)
    loaded = load_card(path)
    assert loaded.warnings == []
    assert card_to_dict(loaded.card) == doc


def test_yaml_nests_the_data_when_a_field_clashes_with_the_header(tmp_path: Path) -> None:
    doc = v3("Clash", kind="mine", version=7)
    card = Card.model_validate(doc)
    text = card_to_yaml(card)
    assert "\ndata:\n  name: Clash" in text
    path = tmp_path / "c.yaml"
    save_card(card, path)
    assert card_to_dict(load_card(path).card) == doc


def test_json_output_can_be_v2(tmp_path: Path) -> None:
    card = Card.model_validate(v3("Old school"))
    save_card(card, tmp_path / "o.json", spec="v2")
    doc = json.loads((tmp_path / "o.json").read_text(encoding="utf-8"))
    assert (doc["spec"], doc["spec_version"]) == ("chara_card_v2", "2.0")
    assert load_card(tmp_path / "o.json").card == card


def test_saves_are_atomic(tmp_path: Path, monkeypatch) -> None:
    import os

    import pytest

    from rp_context.errors import CardError

    target = tmp_path / "keep.json"
    target.write_text("original", encoding="utf-8")

    def boom(*_a, **_k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(CardError, match="No space left"):
        save_card(Card.model_validate(v2()), target)
    assert target.read_text(encoding="utf-8") == "original"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.json"]


def test_new_files_get_the_usual_permissions(tmp_path: Path) -> None:
    import os
    import stat

    out = tmp_path / "new.png"
    save_card(Card.model_validate(v2()), out)
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~mask
