"""The context budget as a stacked bar plus figures: where every token of the last prompt went.

The numbers come straight from the library's BudgetReport and the backend's TurnMetrics; this
module only lays them out.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import Static

__all__ = ["SECTION_COLORS", "SECTION_ORDER", "bar_cells", "BudgetBar", "BudgetPanel"]

SECTION_ORDER = ("system", "card", "lore", "examples", "history", "tail", "structure", "free", "reserve")
SECTION_COLORS = {
    "system": "#5f87d7",
    "card": "#d7875f",
    "lore": "#87af5f",
    "examples": "#af87d7",
    "history": "#5fafaf",
    "tail": "#d7af5f",
    "structure": "#8a8a8a",
    "free": "#3a3a3a",
    "reserve": "#af5f5f",
}


def budget_parts(report: Any) -> dict[str, int]:
    """Tokens per bar part: the report's sections, then what is free of the budget and the reserve."""
    parts = {k: int(report.sections.get(k, 0)) for k in SECTION_ORDER[:7]}
    for k, v in report.sections.items():  # a section the bar does not know goes to structure
        if k not in parts:
            parts["structure"] += int(v)
    parts["free"] = max(0, int(report.budget) - int(report.tokens))
    parts["reserve"] = int(report.reserve)
    return parts


def bar_cells(parts: dict[str, int], width: int) -> list[tuple[str, int]]:
    """Split `width` cells among the parts in proportion (largest remainder; a non-empty part that
    would round to nothing still gets one cell, taken from the largest)."""
    total = sum(parts.values())
    if total <= 0 or width <= 0:
        return [("free", max(0, width))]
    exact = {k: v * width / total for k, v in parts.items()}
    cells = {k: int(x) for k, x in exact.items()}
    left = width - sum(cells.values())
    for k in sorted(exact, key=lambda k: exact[k] - cells[k], reverse=True)[:left]:
        cells[k] += 1
    for k, v in parts.items():
        if v > 0 and cells[k] == 0:
            big = max(cells, key=lambda x: cells[x])
            if cells[big] > 1:
                cells[big] -= 1
                cells[k] = 1
    return [(k, cells[k]) for k in parts if cells[k] > 0]


class BudgetBar(Widget):
    """One row of coloured cells, one colour per part of the context window."""

    DEFAULT_CSS = "BudgetBar { height: 1; }"

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.parts: dict[str, int] = {}

    def set_parts(self, parts: dict[str, int]) -> None:
        self.parts = parts
        self.refresh()

    def render(self) -> Text:
        text = Text()
        for key, n in bar_cells(self.parts, self.size.width):
            text.append("█" * n, style=SECTION_COLORS[key])
        return text


def _fmt_rate(x: float | None) -> str:
    return "—" if x is None else f"{x:.1f}"


class BudgetPanel(Vertical):
    """The side panel: budget bar, per-part legend, cache reuse and speed of the last turn."""

    DEFAULT_CSS = """
    BudgetPanel { height: auto; }
    BudgetPanel .title { text-style: bold; }
    BudgetPanel #budget-legend, BudgetPanel #budget-turn { height: auto; margin-top: 1; }
    """

    def compose(self) -> ComposeResult:
        yield Static("Context", classes="title", id="budget-title")
        yield BudgetBar(id="budget-bar")
        yield Static(id="budget-legend")
        yield Static(id="budget-turn")

    def show(self, report: Any | None, metrics: Any | None, *, preview: bool = False) -> None:
        """Show a fitted prompt's report (`preview`: not sent yet) and the last turn's metrics."""
        title = self.query_one("#budget-title", Static)
        legend = self.query_one("#budget-legend", Static)
        if report is None:
            title.update("Context")
            self.query_one(BudgetBar).set_parts({})
            legend.update("no prompt yet")
        else:
            parts = budget_parts(report)
            self.query_one(BudgetBar).set_parts(parts)
            label = "next prompt" if preview else "last prompt"
            kind = "exact" if report.tokenizer == "exact" else "estimate"
            title.update(f"Context {report.tokens:,} / {report.n_ctx:,} tokens\n{label} · {kind} count")
            t = Text()
            for key in SECTION_ORDER:
                t.append("■ ", style=SECTION_COLORS[key])
                t.append(f"{key:<10}{parts[key]:>7,}\n")
            if report.dropped:
                t.append(f"{len(report.dropped)} message(s) out of context\n", style="bold")
            if report.stripped:
                t.append(f"{len(report.stripped)} message(s) stripped\n")
            if report.reductions:
                t.append("reductions: " + ", ".join(report.reductions) + "\n", style="italic")
            legend.update(t)
        turn = Text()
        if metrics is not None:
            if metrics.reused_tokens is not None and metrics.prompt_tokens:
                pct = 100.0 * metrics.reused_tokens / metrics.prompt_tokens
                turn.append(f"cache reused {metrics.reused_tokens:,}/{metrics.prompt_tokens:,} ({pct:.0f}%)\n")
            else:
                turn.append("cache reuse unknown\n")
            turn.append(f"speed {_fmt_rate(metrics.tokens_per_second)} tok/s\n")
            ttft = metrics.time_to_first_token_s
            turn.append(f"first token {'—' if ttft is None else f'{ttft:.2f} s'}\n")
            turn.append(f"generated {metrics.generated_tokens} · {metrics.stop_reason}")
        else:
            turn.append("no turn yet", style="dim")
        self.query_one("#budget-turn", Static).update(turn)
