"""The prompt inspector shows the exact prompt and the budget report; `rp-chat` refuses bad input
with one line and exit code 2; settings are validated and saved atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _scripted import ScriptedBackend
from textual.widgets import DataTable, Input, Static

from rp_context.budget import span_sections
from rp_context.segments import SegmentKind
from tui.__main__ import main
from tui.config import Settings, SettingsError, load_settings, save_settings, settings_path
from tui.screens import InspectorScreen, SettingsScreen
from tui.screens.inspector import prompt_text
from tui.widgets.budget import SECTION_COLORS, bar_cells, budget_parts


async def settle(app: Any, pilot: Any) -> None:
    for _ in range(2):
        await app.workers.wait_for_complete()
        await pilot.pause()


async def test_inspector_shows_the_last_prompt_exactly(make_app: Any) -> None:
    app = make_app(ScriptedBackend(["Tea first."]))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press(*"Where am I?", "enter")
        await settle(app, pilot)
        await pilot.press("f2")
        await pilot.pause()
        assert isinstance(app.screen, InspectorScreen)
        fitted = app.session.last_fitted
        shown = app.screen.query_one("#prompt-text", Static).render()
        assert str(shown) == fitted.text  # every character of the prompt, nothing else
        table = app.screen.query_one("#segments-table", DataTable)
        assert table.row_count == len(fitted.report.segments)
        summary = str(app.screen.query_one("#inspector-summary", Static).render())
        assert f"{fitted.report.tokens:,} tokens" in summary
        await pilot.press("escape")
        assert not isinstance(app.screen, InspectorScreen)


def test_prompt_colours_follow_the_segments(tiktoken_counter: Any) -> None:
    from rp_context.paths import default_card_path
    from rp_context.session import ChatSession

    session = ChatSession.open(cards=[default_card_path()], backend=ScriptedBackend([]),
                               counter=tiktoken_counter)
    fitted = session.prompt()
    text = prompt_text(fitted)
    kinds = {s.id: s.kind for s in fitted.segments}
    desc = next(s for s in fitted.segments if s.kind == SegmentKind.DESCRIPTION)
    start = fitted.text.index(desc.text)
    styles = {str(span.style) for span in text.spans if span.start <= start < span.end}
    assert styles == {"#d7875f"}  # the card colour
    assert SegmentKind.CHAT_MESSAGE in kinds.values()


def test_inspector_sections_are_the_budgets(tiktoken_counter: Any) -> None:
    """Span by span, the inspector's sections add up to the report's (up to the BPE drift the
    report books on one section), and a story-string label counts as system in both."""
    from rp_context.paths import default_card_path
    from rp_context.session import ChatSession

    session = ChatSession.open(cards=[default_card_path()], backend=ScriptedBackend([]),
                               counter=tiktoken_counter)
    session.send("Hello there, who are you?")
    fitted = session.prompt()
    sections = span_sections(fitted)
    mine: dict[str, int] = {}
    for span, section in sections:
        n = tiktoken_counter.count(span.part.text, special=span.part.special)
        mine[section] = mine.get(section, 0) + n
    report = fitted.report.sections
    assert set(mine) == set(report)
    assert sum(1 for k in report if report[k] != mine[k]) <= 1
    assert next(sec for sp, sec in sections if sp.part.text == "\nScenario: ") == "system"
    text = prompt_text(fitted)
    start = fitted.text.index("\nScenario: ")
    styles = {str(span.style) for span in text.spans if span.start <= start < span.end}
    assert styles == {f"{SECTION_COLORS['system']} italic"}


def test_bar_cells_fill_the_width_in_proportion() -> None:
    cells = dict(bar_cells({"system": 100, "card": 300, "history": 1, "free": 3596, "reserve": 0}, 40))
    assert sum(cells.values()) == 40
    assert cells["history"] == 1  # tiny but present
    assert "reserve" not in cells
    assert cells["free"] > cells["card"] > cells["system"]


def test_budget_parts_add_up_to_the_context(tiktoken_counter: Any) -> None:
    from rp_context.paths import default_card_path
    from rp_context.session import ChatSession

    session = ChatSession.open(cards=[default_card_path()], backend=ScriptedBackend([]),
                               counter=tiktoken_counter, n_ctx=2048)
    report = session.prompt().report
    parts = budget_parts(report)
    assert sum(parts.values()) == report.n_ctx
    assert parts["reserve"] == report.reserve


def test_cli_refuses_a_bad_card_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    assert main(["--card", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("rp-chat: error: ") and str(bad) in err


def test_cli_refuses_a_bad_context_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--context", "12"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--context" in err
    settings_path().parent.mkdir(parents=True, exist_ok=True)
    settings_path().write_text("context: 4096\nmodle: x.gguf\n", encoding="utf-8")
    with pytest.raises(SettingsError, match="modle"):
        load_settings()
    # a broken settings file does not lock the user out: see test_safety.py


def test_settings_round_trip(data_home: Path) -> None:
    s = Settings(context=8192, n_gpu_layers=-1, preset="chatml")
    path = save_settings(s)
    assert path.parent == data_home and load_settings() == s
    assert "model" not in path.read_text()  # only what differs from the defaults


async def test_settings_screen_validates(make_app: Any) -> None:
    app = make_app(ScriptedBackend([]))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("f7")
        assert isinstance(app.screen, SettingsScreen)
        app.screen.query_one("#set-context", Input).value = "12"
        await pilot.click("#save")
        await pilot.pause()
        assert isinstance(app.screen, SettingsScreen)
        assert "context" in str(app.screen.query_one("#settings-error", Static).render())
        await pilot.press("escape")
        assert app.settings == Settings()
