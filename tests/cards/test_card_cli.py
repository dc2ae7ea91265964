"""`rp-context card show|validate|convert`, and bad input as one line with exit code 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rp_context.cli import main

REPO = Path(__file__).resolve().parents[2]


def rp(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rp_context.cli", *args],
        capture_output=True, text=True, timeout=120, cwd=REPO, env={**os.environ},
    )


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_show_on_a_truncated_png_exits_2_with_one_line(tmp_path: Path, reference_dir: Path) -> None:
    data = (reference_dir / "sillytavern" / "cards" / "default_Seraphina.png").read_bytes()
    card = tmp_path / "Seraphina.png"
    card.write_bytes(data[:100_000])
    before = snapshot(tmp_path)
    proc = rp("card", "show", str(card))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(card) in lines[0] and "truncated PNG" in lines[0]
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert snapshot(tmp_path) == before  # nothing written


def test_show_a_card(reference_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["card", "show", str(reference_dir / "sillytavern" / "cards" / "default_Seraphina.png")]) == 0
    out, err = capsys.readouterr()
    assert "Seraphina" in out and "PNG, spec V2, 'chara' chunk" in out and "Eldoria: 4 entries" in out
    assert "400×600" in out and "First message" in out
    assert err.startswith("warning: data.character_book.extensions was missing")


def test_show_json_prints_the_normalised_card(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["card", "show", "--json", str(REPO / "cards" / "wren-halloway.json")]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["spec"] == "chara_card_v3" and doc["data"]["name"] == "Wren Halloway"


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("sam-ashdown.persona.yaml", "Sam Ashdown"),
        ("skerry-light.roster.yaml", "group"),
        ("tobias-marrow.png", "The Skerry Coast: 5 entries"),
        ("absalom-pike.yaml", "Absalom Pike"),
    ],
)
def test_show_every_kind_of_sample(name: str, needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["card", "show", str(REPO / "cards" / name)]) == 0
    assert needle in capsys.readouterr().out


def test_show_a_lorebook_and_a_chat(tmp_path: Path, reference_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["card", "show", str(reference_dir / "sillytavern" / "worlds" / "Eldoria.json")]) == 0
    assert "entries   4 (4 enabled" in capsys.readouterr().out
    chat = tmp_path / "c.jsonl"
    chat.write_text('{"user_name":"Sam","character_name":"Wren","create_date":"","chat_metadata":{}}\n'
                    '{"name":"Wren","is_user":false,"is_system":false,"mes":"Tea?","extra":{}}\n', encoding="utf-8")
    assert main(["card", "show", str(chat)]) == 0
    assert "Sam with Wren" in capsys.readouterr().out


def test_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = sorted(str(p) for p in (REPO / "cards").iterdir())
    assert main(["card", "validate", *files]) == 0
    out = capsys.readouterr().out
    assert out.count(": ok (") == len(files) and "warning" not in out
    dirty = tmp_path / "dirty.json"
    dirty.write_text(json.dumps({"name": "D", "tags": "a,b", "alternate_greetings": "hi"}), encoding="utf-8")
    assert main(["card", "validate", str(dirty)]) == 0
    assert main(["card", "validate", "--strict", str(dirty)]) == 1
    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    assert main(["card", "validate", str(dirty), str(broken)]) == 2
    captured = capsys.readouterr()
    assert "dirty.json: ok (card, JSON, spec V1; 2 repair(s))" in captured.out
    assert f"{broken}: invalid JSON" in captured.err


def test_convert_every_way(tmp_path: Path, reference_dir: Path) -> None:
    src = reference_dir / "sillytavern" / "cards" / "default_Seraphina.png"
    steps = [(src, "json"), (tmp_path / "s.json", "charx"), (tmp_path / "s.charx", "png"), (tmp_path / "s.png", "yaml"), (tmp_path / "s.yaml", "json")]
    for path, fmt in steps:
        out = tmp_path / f"s.{fmt}" if fmt != "json" or path == src else tmp_path / "s2.json"
        assert main(["card", "convert", str(path), "--to", fmt, "-o", str(out)]) == 0
    assert json.loads((tmp_path / "s.json").read_text(encoding="utf-8")) == json.loads((tmp_path / "s2.json").read_text(encoding="utf-8"))


def test_convert_defaults_and_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    card = tmp_path / "ada.json"
    card.write_text(json.dumps({"name": "Ada", "first_mes": "Hi"}), encoding="utf-8")
    assert main(["card", "convert", str(card), "--to", "yaml"]) == 0
    assert (tmp_path / "ada.yaml").exists()
    before = snapshot(tmp_path)
    assert main(["card", "convert", str(card), "--to", "yaml"]) == 2  # would overwrite
    assert main(["card", "convert", str(card)]) == 2  # no format
    assert main(["card", "convert", str(card), "-o", str(tmp_path / "x.txt")]) == 2
    assert main(["card", "convert", str(card), "--to", "png", "--image", str(tmp_path / "none.png")]) == 2
    assert snapshot(tmp_path) == before
    err = capsys.readouterr().err
    assert "already exists" in err and "--to" in err
    assert main(["card", "convert", str(card), "--to", "yaml", "--force"]) == 0
    assert main(["card", "convert", str(card), "--to", "json", "--spec", "v2", "-o", str(tmp_path / "v2.json")]) == 0
    assert json.loads((tmp_path / "v2.json").read_text(encoding="utf-8"))["spec"] == "chara_card_v2"


def test_convert_with_an_image(tmp_path: Path) -> None:
    from PIL import Image

    art = tmp_path / "art.jpg"
    Image.new("RGB", (30, 40), (9, 90, 200)).save(art, format="JPEG")
    assert main(["card", "convert", str(REPO / "cards" / "absalom-pike.yaml"), "--to", "png",
                 "--image", str(art), "-o", str(tmp_path / "absalom.png")]) == 0
    with Image.open(tmp_path / "absalom.png") as im:
        assert im.size == (30, 40)


def test_convert_refuses_a_lorebook(reference_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["card", "convert", str(reference_dir / "sillytavern" / "worlds" / "Eldoria.json"), "--to", "yaml"]) == 2
    assert "is a lorebook" in capsys.readouterr().err


def test_generate_reads_png_and_yaml_cards_too() -> None:
    from rp_context.quickstart import read_simple_card

    assert read_simple_card(REPO / "cards" / "tobias-marrow.png").name == "Tobias Marrow"
    assert read_simple_card(REPO / "cards" / "absalom-pike.yaml").name == "Absalom Pike"
