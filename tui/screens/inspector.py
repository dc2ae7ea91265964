"""The prompt inspector: the exact prompt of the last turn coloured by section, what the budget
manager batched, stripped and evicted, every segment's tokens, and each world-info decision.

Sections are the budget's: every span is coloured by the section the budget report booked its
tokens to, so the colours and the figures never disagree."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static, TabbedContent, TabPane

from rp_context.backends.base import TurnMetrics
from rp_context.budget import BudgetReport, FittedPrompt, span_sections

from ..widgets.budget import SECTION_COLORS, BudgetBar, budget_parts, legend_parts

__all__ = ["InspectorScreen", "prompt_text"]


def prompt_text(fitted: FittedPrompt) -> Text:
    """The flattened prompt as Rich text coloured by the budget's sections; template markers
    (special tokens) in italics."""
    out = Text()
    for span, section in span_sections(fitted):
        style = SECTION_COLORS.get(section.value, SECTION_COLORS["structure"])
        out.append(span.part.text, style=f"{style} italic" if span.part.special else style)
    return out


def _summary(fitted: FittedPrompt, metrics: TurnMetrics | None, preview: bool) -> Text:
    r = fitted.report
    t = Text()
    t.append("Next prompt (not sent yet)" if preview else "Last prompt", style="bold")
    t.append(f" · {r.tokens:,} tokens of {r.budget:,} budget (n_ctx {r.n_ctx:,}, reserve {r.reserve:,})\n"
             f"tokenizer: {r.tokenizer} ({r.tokenizer_name})")
    if r.reused_prefix is not None:
        t.append(f" · {r.reused_prefix:,} tokens shared with the previous prompt")
    if metrics is not None and metrics.reused_tokens is not None:
        t.append(f" · cache reused {metrics.reused_tokens:,}")
    t.append("\n")
    for key, n in legend_parts(budget_parts(r)):
        t.append("■ ", style=SECTION_COLORS[key])
        t.append(f"{key} {n:,}  ")
    t.append("\nreductions: " + (", ".join(r.reductions) or "none"))
    t.append(f" · batched {len(r.batched)} · stripped {len(r.stripped)} · evicted {len(r.dropped)}"
             f" · examples dropped {len(r.examples_dropped)}")
    return t


def _cuts(r: BudgetReport) -> Text:
    t = Text()
    rows = [
        ("Batched (consecutive messages merged into one turn)", r.batched),
        ("Role consolidation", r.consolidated),
        ("Stripped (message id → tier)", [f"{k} → {v}" for k, v in r.stripped.items()]),
        ("Evicted from history (message ids, oldest first)", r.dropped),
        ("Example dialogue blocks dropped", r.examples_dropped),
    ]
    for title, items in rows:
        t.append(f"{title}: ", style="bold")
        t.append(", ".join(str(i) for i in items) if items else "none")
        t.append("\n")
    return t


class InspectorScreen(Screen[None]):
    """Everything about one fitted prompt; Esc goes back to the chat."""

    BINDINGS = [Binding("escape,f2", "app.pop_screen", "Back to chat")]

    def __init__(self, fitted: FittedPrompt, metrics: TurnMetrics | None = None, *,
                 preview: bool = False) -> None:
        super().__init__()
        self.fitted = fitted
        self.metrics = metrics
        self.preview = preview

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(_summary(self.fitted, self.metrics, self.preview), id="inspector-summary")
        bar = BudgetBar(id="inspector-bar")
        bar.set_parts(budget_parts(self.fitted.report))
        yield bar
        with TabbedContent(initial="tab-prompt"):
            with TabPane("Prompt", id="tab-prompt"), VerticalScroll(id="prompt-scroll"):
                yield Static(prompt_text(self.fitted), id="prompt-text")
            with TabPane("Segments", id="tab-segments"):
                yield DataTable(id="segments-table", zebra_stripes=True)
            with TabPane("World info", id="tab-lore"):
                yield DataTable(id="lore-table", zebra_stripes=True)
            with TabPane("Cuts", id="tab-cuts"), VerticalScroll():
                yield Static(_cuts(self.fitted.report), id="cuts-text")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "Prompt inspector"
        r = self.fitted.report
        seg = self.query_one("#segments-table", DataTable)
        seg.add_columns("segment", "kind", "role", "name", "tokens", "status")
        for row in r.segments:
            seg.add_row(row["id"], row["kind"], row.get("role") or "", row.get("name") or "",
                        row["tokens"], row["status"])
        lore = self.query_one("#lore-table", DataTable)
        lore.add_columns("book", "entry", "status", "reason", "matched", "tokens")
        for d in r.lore:
            lore.add_row(d.get("book", ""), d.get("comment") or str(d.get("uid", "")), d.get("status", ""),
                         d.get("reason", ""), d.get("matched_key") or "", d.get("tokens", 0))
        if not r.lore:
            lore.add_row("", "no world info in this chat", "", "", "", 0)
