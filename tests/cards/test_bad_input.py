"""Bad input: a typed error that names the file and the reason, and size guards against bombs."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from _cardfiles import b64, charx, png_with, text_chunk, v2, v3
from PIL import Image

from rp_context.cards import CardLimits, card_from_bytes, load_card
from rp_context.errors import CardError, InputFileError


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def fails(path: Path, *needles: str, limits: CardLimits | None = None) -> CardError:
    before = path.read_bytes()
    with pytest.raises(CardError) as info:
        load_card(path, **({"limits": limits} if limits else {}))
    err = info.value
    assert isinstance(err, InputFileError)
    assert err.path == path and str(path) in str(err)
    for needle in needles:
        assert needle in err.reason, err.reason
    assert "\n" not in str(err)
    assert path.read_bytes() == before  # reading never changes the file
    return err


@pytest.fixture
def good_png() -> bytes:
    return png_with(text_chunk("chara", b64(v2())))


@pytest.mark.parametrize("cut", [4, 8, 20, 33, -30, -13, -5])
def test_truncated_png(tmp_path: Path, good_png: bytes, cut: int) -> None:
    fails(write(tmp_path, "cut.png", good_png[:cut]), "truncated PNG")


def test_truncated_real_card(tmp_path: Path, reference_dir: Path) -> None:
    data = (reference_dir / "sillytavern" / "cards" / "default_Seraphina.png").read_bytes()
    fails(write(tmp_path, "Seraphina.png", data[: len(data) // 2]), "truncated PNG")


def test_not_a_png(tmp_path: Path) -> None:
    fails(write(tmp_path, "fake.png", b"GIF89a this is not a png"), "not a PNG")


def test_png_without_card_chunks(tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, format="PNG")
    fails(write(tmp_path, "plain.png", buf.getvalue()), "no character card")
    fails(write(tmp_path, "other.png", png_with(text_chunk("Comment", "hi"))), "no character card")


def test_bad_base64(tmp_path: Path) -> None:
    fails(write(tmp_path, "b64.png", png_with(text_chunk("chara", "@@@@ not base64 ####"))), "bad base64", "'chara'")
    fails(write(tmp_path, "b64len.png", png_with(text_chunk("chara", "QUJDR"))), "bad base64")


def test_invalid_json_in_a_chunk(tmp_path: Path) -> None:
    import base64

    payload = base64.b64encode(b'{"spec": "chara_card_v2", "data": {"name": "Cut').decode()
    fails(write(tmp_path, "json.png", png_with(text_chunk("ccv3", payload))), "'ccv3' chunk", "invalid JSON")


def test_invalid_json_file(tmp_path: Path) -> None:
    fails(write(tmp_path, "cut.json", b'{"name": "Half'), "invalid JSON at line 1")
    fails(write(tmp_path, "list.json", b"[1, 2]"), "not an object")
    fails(write(tmp_path, "empty.json", b"  \n"), "empty")


def test_a_zip_that_is_not_a_charx(tmp_path: Path) -> None:
    fails(write(tmp_path, "x.charx", charx({"readme.txt": b"hi"})), "without card.json")
    fails(write(tmp_path, "broken.charx", b"PK\x03\x04 garbage garbage"), "not a CHARX")


def test_damaged_charx_member(tmp_path: Path) -> None:
    data = bytearray(charx({"card.json": json.dumps(v3()).encode() * 20}, compression=zipfile.ZIP_DEFLATED))
    data[60] ^= 0xFF  # corrupt the compressed stream
    fails(write(tmp_path, "dmg.charx", bytes(data)), "card.json")


def test_charx_bomb_by_declared_size(tmp_path: Path) -> None:
    members = {"card.json": json.dumps(v3()).encode(), "assets/other/other/pad.bin": b"\0" * 2_000_000}
    path = write(tmp_path, "bomb.charx", charx(members))
    assert path.stat().st_size < 50_000  # tiny on disk
    fails(path, "would unpack to", "zip bomb", limits=CardLimits(max_charx_unpacked=1_000_000))


def test_charx_bomb_that_lies_about_sizes(tmp_path: Path) -> None:
    payload = b"\0" * 500_000
    data = bytearray(charx({"card.json": json.dumps(v3()).encode(), "a.bin": payload}))
    # rewrite the declared size of a.bin (central directory and local header) to 10 bytes
    fake = (10).to_bytes(4, "little")
    real = len(payload).to_bytes(4, "little")
    data = bytes(data).replace(real, fake)
    err = fails(write(tmp_path, "liar.charx", data))
    assert "a.bin" in err.reason


def test_charx_with_too_many_members(tmp_path: Path) -> None:
    members = {"card.json": json.dumps(v3()).encode(), **{f"assets/other/other/{i}.txt": b"x" for i in range(20)}}
    fails(write(tmp_path, "many.charx", charx(members)), "members", limits=CardLimits(max_charx_members=10))


def test_oversized_card(tmp_path: Path) -> None:
    big = v2(description="x" * 5000)
    limits = CardLimits(max_card_json=4000)
    fails(write(tmp_path, "big.json", json.dumps(big).encode()), "larger than", limits=limits)
    fails(write(tmp_path, "big.png", png_with(text_chunk("chara", b64(big)))), "larger than", limits=limits)
    fails(write(tmp_path, "big.charx", charx({"card.json": json.dumps(big).encode()})), "larger than", limits=limits)
    fails(write(tmp_path, "huge.png", png_with(text_chunk("chara", b64(v2())))), "limit", limits=CardLimits(max_file_bytes=100))


def test_ztxt_bomb_is_refused(tmp_path: Path) -> None:
    import zlib

    from _cardfiles import chunk

    bomb = chunk(b"zTXt", b"chara\0\0" + zlib.compress(b"A" * 3_000_000))
    fails(write(tmp_path, "z.png", png_with(bomb)), "too large", limits=CardLimits(max_card_json=1_000_000))


def test_other_image_formats_say_so(tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, format="JPEG")
    fails(write(tmp_path, "card.jpg", buf.getvalue()), "JPEG")
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, format="WEBP")
    fails(write(tmp_path, "card.webp", buf.getvalue()), "WebP")


def test_other_kinds_of_file_are_named(tmp_path: Path, reference_dir: Path) -> None:
    eldoria = reference_dir / "sillytavern" / "worlds" / "Eldoria.json"
    fails(write(tmp_path, "Eldoria.json", eldoria.read_bytes()), "lorebook")
    fails(write(tmp_path, "group.json", json.dumps({"name": "G", "members": ["a.png"], "generation_mode": 0}).encode()), "group roster")
    fails(write(tmp_path, "p.yaml", b"kind: persona\nname: Sam\n"), "'persona' file")


def test_missing_and_directory(tmp_path: Path) -> None:
    with pytest.raises(CardError, match="not found"):
        load_card(tmp_path / "nope.png")
    with pytest.raises(CardError, match="is a directory, not a card file"):
        load_card(tmp_path)


def test_binary_garbage(tmp_path: Path) -> None:
    fails(write(tmp_path, "garbage.json", bytes(range(256)) * 4), "binary")


def test_bad_yaml(tmp_path: Path) -> None:
    fails(write(tmp_path, "bad.yaml", b"name: [unclosed\n"), "invalid YAML")


def test_card_from_bytes_without_a_path() -> None:
    with pytest.raises(CardError, match="truncated PNG") as info:
        card_from_bytes(png_with(text_chunk("chara", b64(v2())))[:50])
    assert info.value.path is None
