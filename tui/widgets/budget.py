"""The context budget as a stacked bar plus figures: where every token of the last prompt went.

The numbers come straight from the library's BudgetReport and the backend's TurnMetrics; this
module only lays them out. The parts are the budget's own sections (`rp_context.segments.Section`,
as the report books them), then what is free of the budget and the reserve.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import Static

from rp_context.backends.base import TurnMetrics
from rp_context.budget import BudgetReport
from rp_context.segments import Section

__all__ = ["SECTION_COLORS", "SECTION_ORDER", "bar_cells", "budget_parts", "BudgetBar",
           "BudgetPanel"]

SECTION_ORDER = (*(s.value for s in Section), "free", "reserve")
"""The budget's sections in its order, then the free part of the budget and the reserve."""
SECTION_COLORS = {
    Section.SYSTEM.value: "#5f87d7",
    Section.CARD.value: "#d7875f",
    Section.LORE.value: "#87af5f",
    Section.EXAMPLES.value: "#af87d7",
    Section.HISTORY.value: "#5fafaf",
    Section.MEMORY.value: "#87afd7",
    Section.TAIL.value: "#d7af5f",
    Section.STRUCTURE.value: "#8a8a8a",
    "free": "#3a3a3a",
    "reserve": "#af5f5f",
}


def legend_parts(parts: dict[str, int]) -> list[tuple[str, int]]:
    """The parts a legend lists: all of them, but the memory only once there is one."""
    return [(k, n) for k, n in parts.items() if n or k != Section.MEMORY.value]


def budget_parts(report: BudgetReport) -> dict[str, int]:
    """Tokens per bar part: the report's own sections, then what is free of the budget and the
    reserve (a section the report does not name is 0)."""
    parts = {s.value: int(report.sections.get(s.value, 0)) for s in Section}
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

    def show(self, report: BudgetReport | None, metrics: TurnMetrics | None, *,
             preview: bool = False) -> None:
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
            for key, n in legend_parts(parts):
                t.append("■ ", style=SECTION_COLORS[key])
                t.append(f"{key:<10}{n:>7,}\n")
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
