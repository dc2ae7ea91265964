"""PNG cards: every chunk variant reads; writing keeps the image and writes `chara` and `ccv3`."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from _cardfiles import b64, base_png, chunk, chunk_types, png_with, split_png, text_chunk, v2, v3
from PIL import Image

from rp_context.cards import Card, card_from_bytes, card_to_bytes, card_to_dict
from rp_context.cards.png import PNG_SIGNATURE

P = Path("card.png")


def read(png: bytes):
    return card_from_bytes(png, path=P)


@pytest.mark.parametrize("kind", ["tEXt", "zTXt", "iTXt", "iTXt-z"])
def test_every_text_chunk_type(kind: str) -> None:
    loaded = read(png_with(text_chunk("chara", b64(v2("Zoë")), kind)))
    assert loaded.card.data.name == "Zoë"
    assert loaded.warnings == []


@pytest.mark.parametrize("keyword", ["Chara", "CHARA", "chara"])
def test_keyword_case_is_ignored(keyword: str) -> None:
    loaded = read(png_with(text_chunk(keyword, b64(v2()))))
    assert loaded.card.data.name == "Ada" and loaded.chunk == "chara"


def test_chunk_after_idat() -> None:
    png = png_with(text_chunk("chara", b64(v2("Late"))), after_idat=True)
    assert chunk_types(png).index("tEXt") > chunk_types(png).index("IDAT")
    assert read(png).card.data.name == "Late"


def test_ccv3_wins_over_chara_wherever_it_is() -> None:
    png = png_with(text_chunk("chara", b64(v2("From V2"))), text_chunk("ccv3", b64(v3("From V3"))))
    loaded = read(png)
    assert (loaded.card.data.name, loaded.chunk, loaded.spec) == ("From V3", "ccv3", "v3")
    png = png_with(text_chunk("ccv3", b64(v3("From V3"))), text_chunk("chara", b64(v2("From V2"))), after_idat=True)
    assert read(png).card.data.name == "From V3"


def test_unreadable_ccv3_falls_back_to_chara() -> None:
    png = png_with(text_chunk("ccv3", "!!!not base64!!!"), text_chunk("chara", b64(v2("Backup"))))
    loaded = read(png)
    assert loaded.card.data.name == "Backup" and loaded.chunk == "chara"
    assert any("'ccv3' chunk is unreadable" in w for w in loaded.warnings)


def test_lenient_base64() -> None:
    text = b64(v2("Padless")).rstrip("=")
    wrapped = "\n".join(text[i : i + 60] for i in range(0, len(text), 60))
    assert read(png_with(text_chunk("chara", wrapped))).card.data.name == "Padless"
    urlsafe = base64.urlsafe_b64encode(json.dumps(v2("Url~~??")).encode()).decode()
    assert read(png_with(text_chunk("chara", urlsafe))).card.data.name == "Url~~??"


def test_plain_json_in_the_chunk_is_read_with_a_warning() -> None:
    loaded = read(png_with(text_chunk("chara", json.dumps(v2("Plain")))))
    assert loaded.card.data.name == "Plain"
    assert any("plain JSON instead of base64" in w for w in loaded.warnings)


def test_utf8_bom_in_the_payload() -> None:
    payload = base64.b64encode(b"\xef\xbb\xbf" + json.dumps(v2("Bom")).encode()).decode()
    assert read(png_with(text_chunk("chara", payload))).card.data.name == "Bom"


def test_v1_card_in_a_png() -> None:
    flat = {"name": "Old", "description": "", "personality": "", "scenario": "", "first_mes": "", "mes_example": ""}
    loaded = read(png_with(text_chunk("chara", b64(flat))))
    assert loaded.spec == "v1" and loaded.card.data.name == "Old"


def test_duplicate_chunks_use_the_first() -> None:
    png = png_with(text_chunk("chara", b64(v2("First"))), text_chunk("chara", b64(v2("Second"))))
    loaded = read(png)
    assert loaded.card.data.name == "First"
    assert any("more than one 'chara'" in w for w in loaded.warnings)


def test_bytes_after_iend_are_ignored_with_a_warning() -> None:
    loaded = read(png_with(text_chunk("chara", b64(v2()))) + b"trailing junk")
    assert any("after the PNG's IEND" in w for w in loaded.warnings)


def test_bad_crc_on_the_card_chunk_still_reads() -> None:
    good = text_chunk("chara", b64(v2("Crc")))
    bad = good[:-4] + b"\0\0\0\0"
    loaded = read(png_with(bad))
    assert loaded.card.data.name == "Crc"
    assert any("fails its CRC" in w for w in loaded.warnings)


def test_write_keeps_the_image_and_other_chunks_and_writes_both_card_chunks() -> None:
    phys = chunk(b"pHYs", b"\x00\x00\x0b\x13\x00\x00\x0b\x13\x01")
    comment = text_chunk("Comment", "made by hand")
    old = text_chunk("Chara", b64(v2("Old")))
    src = png_with(phys, comment, old, text_chunk("ccv3", b64(v3("Old3"))), after_idat=False)
    card = Card.model_validate(v3("New"))
    out, warnings = card_to_bytes(card, "png", image=src)
    assert warnings == []
    types = chunk_types(out)
    assert types.count("tEXt") == 3  # Comment + chara + ccv3; the old card chunks are gone
    raw = split_png(out)
    assert phys in raw and comment in raw  # byte for byte
    assert [c for c in split_png(src) if c[4:8] == b"IDAT"] == [c for c in raw if c[4:8] == b"IDAT"]
    assert types[-3:] == ["tEXt", "tEXt", "IEND"]
    chara = next(c for c in raw if c[8:14] == b"chara\0")
    ccv3 = next(c for c in raw if c[8:13] == b"ccv3\0")
    v2_doc = json.loads(base64.b64decode(chara[14:-4]))
    v3_doc = json.loads(base64.b64decode(ccv3[13:-4]))
    assert (v2_doc["spec"], v3_doc["spec"]) == ("chara_card_v2", "chara_card_v3")
    assert v2_doc["data"] == v3_doc["data"] == card.data.to_dict()
    assert v2_doc["name"] == "New" and "name" not in v3_doc  # V1 copies only in the V2 backfill
    assert read(out).card == card


def test_write_without_an_image_paints_a_placeholder() -> None:
    out, _ = card_to_bytes(Card.model_validate(v2("Quiet Person")), "png")
    assert out.startswith(PNG_SIGNATURE)
    from io import BytesIO

    with Image.open(BytesIO(out)) as im:
        assert im.size == (400, 600)


def test_jpeg_image_is_converted_to_png() -> None:
    from io import BytesIO

    buf = BytesIO()
    Image.new("RGB", (10, 10), (1, 2, 3)).save(buf, format="JPEG")
    out, _ = card_to_bytes(Card.model_validate(v2()), "png", image=buf.getvalue())
    with Image.open(BytesIO(out)) as im:
        assert im.format == "PNG" and im.size == (10, 10)
    assert read(out).card.data.name == "Ada"


def test_png_round_trip_of_a_real_card_keeps_every_key() -> None:
    doc = v3("Round", extensions={"x": {"y": [None, 1.5, "z"]}})
    doc["x_top"] = 1
    out, _ = card_to_bytes(Card.model_validate(doc), "png", image=base_png())
    assert card_to_dict(read(out).card) == doc
