"""Issue 17, class by class: hostile input gives a typed error (one line, exit 2 on the command
line) or a warning, never a traceback, a hang, a lost message or a file written on refusal."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rp_context.assembly import assemble
from rp_context.atomic import write_bytes_atomic
from rp_context.cards import card_from_bytes, card_to_bytes, load_card
from rp_context.cards.lorebook import load_lorebook, lorebook_from_dict
from rp_context.chat import MAX_CHAT_LINE_BYTES, Chat, ChatHeader, ChatMessage, load_chat, save_chat
from rp_context.errors import CardError, PresetError, TemplateError
from rp_context.macros import MacroContext, expand_macros
from rp_context.presets import get_family
from rp_context.presets.models import ContextPreset
from rp_context.presets.sillytavern import import_sillytavern_file
from rp_context.presets.yamlio import parse_preset_text
from rp_context.templates.jinja import JinjaTemplate, template_problem
from rp_context.tokens import TiktokenCounter
from rp_context.worldinfo import WorldInfoSettings

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "cards"))
from _cardfiles import charx, png_with, text_chunk  # noqa: E402 - the card tests' file makers

HUGE_INT = "9" * 5000
DEEP = 10_000


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([sys.executable, "-m", "rp_context.cli", *args], capture_output=True, text=True,
                          cwd=REPO, env=full, timeout=300)


def one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def card_json(**data: object) -> dict[str, object]:
    return {"spec": "chara_card_v2", "spec_version": "2.0",
            "data": {"name": "Wren", "description": "", "first_mes": "Hello.", **data}}


def chat_lines(*messages: dict[str, object]) -> bytes:
    header = {"user_name": "User", "character_name": "Wren", "create_date": "2024-01-01@00h00m00s",
              "chat_metadata": {}}
    return ("\n".join(json.dumps(m, ensure_ascii=True) for m in (header, *messages)) + "\n").encode()


def msg(text: str, *, user: bool = True) -> dict[str, object]:
    return {"name": "User" if user else "Wren", "is_user": user, "mes": text, "send_date": "2024-01-01"}


# --- numbers: integers past 64 bits / int()'s digit limit, non-finite numbers ------------------------


def test_huge_integer_in_a_card_is_a_card_error(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_text('{"spec": "chara_card_v2", "data": {"name": "W", "extensions": {"n": ' + HUGE_INT + "}}}")
    with pytest.raises(CardError, match="digits|64 bits"):
        load_card(path)
    yaml_card = tmp_path / "big.yaml"
    yaml_card.write_text(f"kind: card\nversion: 1\nname: W\nextensions:\n  n: {HUGE_INT}\n")
    with pytest.raises(CardError, match="out of range|64 bits"):
        load_card(yaml_card)


def test_huge_integer_in_one_chat_line_keeps_the_chat(tmp_path: Path) -> None:
    path = tmp_path / "chat.jsonl"
    good = chat_lines(msg("first"), msg("second", user=False))
    path.write_bytes(good + b'{"name": "User", "is_user": true, "mes": "x", "n": ' + HUGE_INT.encode() + b"}\n")
    loaded = load_chat(path)
    assert [m.text for m in loaded.chat.messages] == ["first", "second"]
    assert len(loaded.chat.unreadable) == 1 and "digits" in loaded.chat.unreadable[0].reason
    save_chat(loaded, path)
    assert HUGE_INT.encode() in path.read_bytes()  # the unreadable line is kept, not lost


def test_huge_integer_and_infinity_in_a_lorebook(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    big.write_text('{"entries": {"0": {"key": ["a"], "content": "x", "depth": ' + HUGE_INT + "}}}")
    with pytest.raises(CardError):
        load_lorebook(big)
    inf = tmp_path / "inf.json"
    inf.write_text('{"entries": {"0": {"key": ["a"], "content": "x", "position": Infinity}}}')
    with pytest.raises(CardError, match="Infinity"):
        load_lorebook(inf)
    with pytest.raises(CardError, match="finite"):  # a book built in code: typed too
        lorebook_from_dict({"entries": {"0": {"key": ["a"], "content": "x", "position": float("inf")}}},
                           path=None, name="b")


def test_huge_integer_and_nan_in_a_sillytavern_preset(tmp_path: Path) -> None:
    path = tmp_path / "ctx.json"
    path.write_text('{"story_string": "{{char}}", "name": "x", "depth": ' + HUGE_INT + "}")
    with pytest.raises(PresetError, match="digits"):
        import_sillytavern_file(path)
    path.write_text('{"story_string": "{{char}}", "name": "x", "depth": NaN}')
    with pytest.raises(PresetError, match="NaN"):
        import_sillytavern_file(path)


# --- depth -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_deep_nesting_is_a_typed_error(tmp_path: Path, suffix: str) -> None:
    card = tmp_path / f"deep{suffix}"
    lore = tmp_path / f"lore{suffix}"
    if suffix == ".json":
        body = "[" * DEEP + "]" * DEEP
        card.write_text('{"name": "W", "extensions": {"x": ' + body + "}}")
        lore.write_text('{"entries": ' + body + "}")
    else:
        body = "[" * DEEP + "]" * DEEP
        card.write_text(f"name: W\nextensions:\n  x: {body}\n")
        lore.write_text(f"entries: {body}\n")
    with pytest.raises(CardError, match="nested|deep"):
        load_card(card)
    with pytest.raises(CardError, match="nested|deep"):
        load_lorebook(lore)


def test_deep_preset_yaml_and_unhashable_kind() -> None:
    with pytest.raises(PresetError, match="nested|deep"):
        parse_preset_text("kind: instruct\nversion: 1\nname: x\nx: " + "[" * DEEP + "]" * DEEP)
    with pytest.raises(PresetError, match="kind"):
        parse_preset_text("kind: [instruct]\nversion: 1\nname: x\n")


def test_yaml_errors_are_one_line() -> None:
    with pytest.raises(PresetError) as info:
        parse_preset_text("kind: instruct\nversion: 1\nname: [unclosed\n")
    assert "\n" not in str(info.value) and "line" in str(info.value)


def test_alias_bomb_is_refused(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    path = tmp_path / "bomb.yaml"
    path.write_text("name: W\nextensions:\n  " + "\n  ".join(lines) + "\n")
    assert len(path.read_bytes()) < 1000
    with pytest.raises(CardError, match="alias"):
        load_card(path)


# --- text: lone surrogates, consistent on load and save ---------------------------------------------


@pytest.mark.parametrize("escape", ["\\ud800", "\\udc80", "\\udcff", "\\udfff"])
def test_lone_surrogate_in_a_chat_line_is_never_lost(tmp_path: Path, escape: str) -> None:
    path = tmp_path / "chat.jsonl"
    line = b'{"name": "User", "is_user": true, "mes": "a' + escape.encode() + b'b", "send_date": "x"}\n'
    path.write_bytes(chat_lines(msg("before")) + line)
    loaded = load_chat(path)
    assert [m.text for m in loaded.chat.messages] == ["before", "a\ufffdb"]
    assert any("surrogate" in w for w in loaded.warnings)
    save_chat(loaded, path)
    path.read_bytes().decode("utf-8")  # strict UTF-8: nothing written as a raw byte
    again = load_chat(path)
    assert [m.text for m in again.chat.messages] == ["before", "a\ufffdb"]
    assert not again.chat.unreadable


def test_a_typed_surrogate_is_saved_as_it_loads(tmp_path: Path) -> None:
    chat = Chat(header=ChatHeader(user_name="User", character_name="Wren", create_date="x"),
                messages=[ChatMessage(id="0", name="User", role="user", text="a\udc80b\ud800")])
    path = save_chat(chat, tmp_path / "c.jsonl")
    assert [m.text for m in load_chat(path).chat.messages] == ["a\ufffdb\ufffd"]


def test_lone_surrogate_in_a_card_loads_and_writes_every_format(tmp_path: Path) -> None:
    raw = json.dumps(card_json(description="x\ud800y"), ensure_ascii=True).encode()
    loaded = card_from_bytes(raw, path=tmp_path / "s.json")
    assert loaded.card.data.description == "x\ufffdy"
    assert any("surrogate" in w for w in loaded.warnings)
    for fmt in ("json", "png", "charx", "yaml"):
        data, _ = card_to_bytes(loaded, fmt)  # type: ignore[arg-type]
        assert card_from_bytes(data, format=fmt).card.data.description == "x\ufffdy"  # type: ignore[arg-type]


# --- macros: out of range is text and a warning; a chat that once broke renders --------------------


@pytest.mark.parametrize("macro", ["{{time_UTC+99999999}}", "{{roll:1d" + "9" * 5000 + "}}",
                                   "{{roll:" + "9" * 5000 + "d6}}", "{{time_UTC-" + "9" * 5000 + "}}"])
def test_macro_out_of_range_is_left_as_text(macro: str) -> None:
    warnings: list[str] = []
    out = expand_macros(f"a {macro} b", MacroContext(warnings=warnings, frozen={}))
    assert out == f"a {macro} b"
    assert warnings and "left as text" in warnings[0]


def test_a_chat_with_a_bricking_macro_renders() -> None:
    chat = Chat(header=ChatHeader(user_name="User", character_name="Wren", create_date="2024-01-01@00h00m00s"),
                messages=[ChatMessage(id="0", name="User", role="user", text="{{time_UTC+99999999}} {{roll:1d"
                                      + "9" * 5000 + "}}")])
    card = card_from_bytes(json.dumps(card_json()).encode()).card
    context = ContextPreset(name="c", story_string="{{char}} meets {{user}} at {{time_UTC+99999999}}.")
    prompt = assemble(cards=[card], chat=chat, instruct=get_family("chatml"), context=context)
    assert "{{time_UTC+99999999}}" in prompt.flatten().text
    assert any("left as text" in w for w in prompt.warnings)


# --- bounded work ------------------------------------------------------------------------------------


def test_pathological_regex_key_is_reported_not_hung() -> None:
    from rp_context.worldinfo import activate_world_info

    book = lorebook_from_dict({"entries": {"0": {"key": ["/(a|aa)+$/"], "content": "lore"}}}, path=None,
                              name="b").book
    chat = [ChatMessage(id="0", name="User", role="user", text="a" * 48 + "!")]
    result = activate_world_info([book], chat, settings=WorldInfoSettings(), counter=TiktokenCounter(),
                                 max_context_tokens=8192, seed="s")
    decision = result.decisions[0]
    assert decision.status == "no_match" and "gave up" in decision.reason, decision.reason


def test_long_chat_line_is_refused_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "long.jsonl"
    path.write_bytes(chat_lines(msg("short"), msg("x" * (MAX_CHAT_LINE_BYTES + 10))))
    loaded = load_chat(path)
    assert [m.text for m in loaded.chat.messages] == ["short"]
    assert "MiB" in loaded.chat.unreadable[0].reason
    save_chat(loaded, path)
    assert len(path.read_bytes()) > MAX_CHAT_LINE_BYTES  # nothing lost


def test_duplicate_card_chunks_are_not_inflated(tmp_path: Path) -> None:
    good = base64.b64encode(json.dumps(card_json()).encode()).decode()
    junk = text_chunk("chara", "A" * (4 * 1024 * 1024), kind="zTXt")  # inflates to 4 MiB each
    png = png_with(text_chunk("chara", good), *[junk] * 50)
    loaded = card_from_bytes(png)
    assert loaded.card.data.name == "Wren"
    assert any("more than one 'chara'" in w for w in loaded.warnings)


@pytest.mark.parametrize(("source", "why"), [
    ("{{ 1 / 0 }}", "ZeroDivisionError"),
    ("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "recurs"),
    ("{% for i in range(10**9) %}x{% endfor %}", "too large"),
    ("{{ 9**(9**10) }}", "4096-bit"),
    ("{{ 'a' * 10**10 }}", "characters"),
    ("{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}", "steps"),
    ("{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
     "characters"),
    ("{{ 'a' | center(10**9) }}", "too large"),
])
def test_hostile_jinja_is_a_template_error(source: str, why: str) -> None:
    with pytest.raises(TemplateError, match=why):
        JinjaTemplate(source + "{% for m in messages %}{{ m.content }}{% endfor %}").render(
            [{"role": "user", "content": "hi"}])


def test_template_problem_finds_what_compiling_would_fold() -> None:
    assert "4096-bit" in (template_problem("{% if false %}{{ 9**(9**10) }}{% endif %}") or "")
    assert "syntax" in (template_problem("{% for %}") or "")
    assert template_problem("{% for m in messages %}{{ m.content }}{% endfor %}") is None


def test_format_command_refuses_hostile_templates_in_one_line(tmp_path: Path) -> None:
    msgs = tmp_path / "m.json"
    msgs.write_text('[{"role": "user", "content": "hi"}]')
    tpl = tmp_path / "bomb.jinja"
    tpl.write_text("{{ 9**(9**10) }}")
    one_line_error(cli("format", "--template", str(tpl), str(msgs)), "4096-bit")
    big = tmp_path / "big.json"
    big.write_text('[{"role": "user", "content": "hi", "n": ' + HUGE_INT + "}]")
    one_line_error(cli("format", str(big)), str(big), "digits")
    deep = tmp_path / "deep.json"
    deep.write_text("[" * DEEP + "]" * DEEP)
    one_line_error(cli("format", str(deep)), str(deep), "nested")


def test_card_commands_print_one_line(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    big.write_text('{"spec": "chara_card_v2", "data": {"name": "W", "n": ' + HUGE_INT + "}}")
    one_line_error(cli("card", "validate", str(big)), str(big))
    bomb = tmp_path / "deep.yaml"
    bomb.write_text("name: W\nx: " + "[" * DEEP + "]" * DEEP + "\n")
    one_line_error(cli("card", "show", str(bomb)), str(bomb), "nested")


# --- names as file names, unsafe CHARX members, leftovers ----------------------------------------------


def test_preset_import_with_a_300_character_name(tmp_path: Path) -> None:
    src = tmp_path / "long.json"
    src.write_text(json.dumps({"name": "N" * 300, "story_string": "{{char}}", "chat_start": "",
                               "example_separator": ""}))
    proc = cli("preset", "import", str(src), env={"RP_CONTEXT_HOME": str(tmp_path / "data")})
    assert proc.returncode == 0, proc.stderr
    written = [p for p in (tmp_path / "data").rglob("*.yaml")]
    assert written and all(len(p.name) <= 255 for p in written)


def test_unsafe_charx_members_are_dropped_on_write() -> None:
    card = json.dumps({**card_json(), "spec": "chara_card_v3", "spec_version": "3.0"}).encode()
    data = charx({"card.json": card, "../../evil.txt": b"x", "assets/other/ok.txt": b"ok", "/abs.txt": b"y"})
    loaded = card_from_bytes(data)
    out, warnings = card_to_bytes(loaded, "charx")
    import io
    import zipfile

    names = zipfile.ZipFile(io.BytesIO(out)).namelist()
    assert "assets/other/ok.txt" in names
    assert not any(".." in n or n.startswith("/") for n in names)
    assert any("unsafe paths" in w for w in warnings)


def test_leftover_temp_files_are_cleaned(tmp_path: Path) -> None:
    target = tmp_path / "chat.jsonl"
    dead = tmp_path / f".{target.name}.999999999.abc.tmp"  # a writer that is gone (no such pid)
    dead.write_bytes(b"half a chat")
    old = tmp_path / f".{target.name}.zzzz.tmp"  # an older rp-context's temp name, long stale
    old.write_bytes(b"x")
    os.utime(old, (1, 1))
    write_bytes_atomic(target, chat_lines(msg("hi")))
    assert not dead.exists() and not old.exists()
    dead.write_bytes(b"again")
    load_chat(target)
    assert not dead.exists()


def test_cli_refuses_a_file_name_too_long(tmp_path: Path) -> None:
    card = tmp_path / "w.json"
    card.write_text(json.dumps(card_json()))
    proc = cli("card", "convert", str(card), "--to", "yaml", "-o", str(tmp_path / ("x" * 300 + ".yaml")))
    one_line_error(proc)
