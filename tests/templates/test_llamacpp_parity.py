"""Our families against llama.cpp's own builtin templates, byte for byte, on random conversations."""

from __future__ import annotations

import zlib

import pytest
from _convgen import conversations

from rp_context.errors import TemplateError
from rp_context.presets import get_family
from rp_context.templates import Message, c_trim
from rp_context.templates.llamacpp import llamacpp_apply_template, llamacpp_builtin_names

# our family -> llama.cpp builtin name: every builtin that renders text (all but deepseek-ocr
# and hunyuan-vl, which are vision formats)
PAIRS = {
    "chatml": "chatml",
    "llama2": "llama2-sys",
    "llama2-nosys": "llama2",
    "llama2-sys-bos": "llama2-sys-bos",
    "llama2-sys-strip": "llama2-sys-strip",
    "llama3": "llama3",
    "llama4": "llama4",
    "mistral-v1": "mistral-v1",
    "mistral-v3": "mistral-v3",
    "mistral-v3-tekken": "mistral-v3-tekken",
    "mistral-v7": "mistral-v7",
    "mistral-v7-tekken": "mistral-v7-tekken",
    "gemma": "gemma",
    "phi3": "phi3",
    "phi4": "phi4",
    "falcon3": "falcon3",
    "zephyr": "zephyr",
    "vicuna": "vicuna",
    "vicuna-orca": "vicuna-orca",
    "command-r": "command-r",
    "orion": "orion",
    "openchat": "openchat",
    "deepseek": "deepseek",
    "deepseek2": "deepseek2",
    "deepseek3": "deepseek3",
    "chatglm3": "chatglm3",
    "chatglm4": "chatglm4",
    "glmedge": "glmedge",
    "minicpm": "minicpm",
    "exaone3": "exaone3",
    "exaone4": "exaone4",
    "exaone-moe": "exaone-moe",
    "rwkv-world": "rwkv-world",
    "granite": "granite",
    "granite-4.0": "granite-4.0",
    "granite-4.1": "granite-4.1",
    "gigachat": "gigachat",
    "megrez": "megrez",
    "yandex": "yandex",
    "bailing": "bailing",
    "bailing-think": "bailing-think",
    "bailing2": "bailing2",
    "smolvlm": "smolvlm",
    "hunyuan-moe": "hunyuan-moe",
    "hunyuan-dense": "hunyuan-dense",
    "gpt-oss": "gpt-oss",
    "kimi-k2": "kimi-k2",
    "seed_oss": "seed_oss",
    "grok-2": "grok-2",
    "pangu-embedded": "pangu-embedded",
    "solar-open": "solar-open",
    "monarch": "monarch",
}
NOT_TEXT = {"deepseek-ocr", "hunyuan-vl"}
N = 200


def _merged_trailing_system(msgs: list[Message], trim: bool) -> list[Message]:
    """Where a merge family's system text has no user turn after it, llama.cpp drops it and we give
    it a user turn of its own at the end: the llama.cpp render of that conversation is our render."""
    last_user = max((i for i, m in enumerate(msgs) if m.role == "user"), default=-1)
    trailing = [m for i, m in enumerate(msgs) if i > last_user and m.role == "system"]
    merged = "".join(c_trim(m.content) if trim else m.content for m in trailing)
    if not merged:
        return msgs
    kept = [m for i, m in enumerate(msgs) if not (i > last_user and m.role == "system")]
    return [*kept, Message("user", merged)]


def _first_system_only(msgs: list[Message]) -> list[Message]:
    return [m for i, m in enumerate(msgs) if m.role != "system" or i == 0]


def _no_system(msgs: list[Message]) -> list[Message]:
    return [m for m in msgs if m.role != "system"]


# Where llama.cpp drops text we keep it: compare on the conversation llama.cpp renders whole
# (the deviation itself is asserted in test_kept_where_llamacpp_drops).
EQUIVALENT = {
    "gemma": lambda c: _merged_trailing_system(c, True),
    "orion": lambda c: _merged_trailing_system(c, False),
}
RESTRICTED = {
    "gigachat": _first_system_only,
    "hunyuan-dense": _first_system_only,
    "yandex": _no_system,
}


def test_llamacpp_knows_every_paired_name() -> None:
    names = set(llamacpp_builtin_names())
    assert set(PAIRS.values()) <= names
    assert names - set(PAIRS.values()) == NOT_TEXT


@pytest.mark.parametrize("family", sorted(PAIRS))
def test_family_equals_llamacpp_builtin(family: str) -> None:
    template = get_family(family)
    builtin = PAIRS[family]
    compared = 0
    for conv in conversations(zlib.crc32(family.encode()), N):
        conv = RESTRICTED.get(family, lambda c: c)(conv)
        if not conv:
            continue
        for agp in (True, False):
            ours = template.render(conv, agp).text
            expected = llamacpp_apply_template(builtin, EQUIVALENT.get(family, lambda c: c)(conv), agp)
            assert ours == expected, (family, agp, conv)
            compared += 1
    assert compared >= 2 * N - 20


@pytest.mark.parametrize("family", ["gemma", "orion", "gigachat", "hunyuan-dense", "yandex"])
def test_kept_where_llamacpp_drops(family: str) -> None:
    conv = [Message("user", "hi"), Message("system", "mid note"), Message("user", "go"),
            Message("assistant", "ok"), Message("system", "last note")]
    ours = get_family(family).render(conv).text
    assert "mid note" in ours and "last note" in ours
    theirs = llamacpp_apply_template(PAIRS[family], conv)
    assert "last note" not in theirs or "mid note" not in theirs


@pytest.mark.parametrize("family", sorted(PAIRS))
def test_stop_strings_end_the_reply(family: str) -> None:
    """The end-of-reply marker is what the template writes after an assistant turn and is sent as
    a stop string; families without one (their turns just start) stop on the next role header."""
    t = get_family(family)
    text = t.render([Message("user", "u"), Message("assistant", "REPLY")], False).text
    after = text[text.index("REPLY") + len("REPLY") :]
    stops = t.render([Message("user", "u")]).stop
    if t.stop_sequence:
        assert t.stop_sequence in after and t.stop_sequence in stops
    else:
        user_header = t.input_sequence.strip()
        assert user_header and user_header in stops


def test_unknown_builtin_raises() -> None:
    with pytest.raises(TemplateError):
        llamacpp_apply_template("alpaca", [Message("user", "hi")])


def test_unicode_whitespace_follows_llamacpp() -> None:
    # C isspace() does not strip U+00A0 / U+3000; Python's str.strip() would.
    conv = [Message("user", "\u3000hi\u00a0 ")]
    for family in ("llama3", "gemma", "command-r"):
        ours = get_family(family).render(conv).text
        assert ours == llamacpp_apply_template(PAIRS[family], conv)
        assert "\u3000hi\u00a0" in ours


@pytest.mark.parametrize("family", sorted(PAIRS))
def test_family_equals_golden_builtin_render(family: str, golden_builtin: dict) -> None:
    """The same against llama.cpp's renders saved in ../shared (no llama.cpp needed)."""
    convs = golden_builtin["_meta"]["conversations"]
    renders = golden_builtin[PAIRS[family]]
    t = get_family(family)
    for key, expected in renders.items():
        name, agp = key.split("|")
        conv = [Message(m["role"], m["content"]) for m in convs[name]]
        conv = RESTRICTED.get(family, lambda c: c)(conv)
        if conv != [Message(m["role"], m["content"]) for m in convs[name]]:
            continue  # llama.cpp dropped text here
        assert t.render(conv, agp == "agp=1").text == expected, (family, key)
