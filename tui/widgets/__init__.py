"""The chat screen's widgets: messages, the prompt box, the budget panel and the group roster."""

from .budget import SECTION_COLORS, BudgetBar, BudgetPanel, bar_cells
from .message import MessageView, PromptInput
from .roster import RosterList

__all__ = ["SECTION_COLORS", "BudgetBar", "BudgetPanel", "bar_cells", "MessageView", "PromptInput",
           "RosterList"]
