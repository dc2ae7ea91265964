"""The chat screen's widgets: messages, the message box, the budget panel, the group roster and
the memory."""

from .budget import SECTION_COLORS, BudgetBar, BudgetPanel, bar_cells
from .memory import MemoryPanel
from .message import MessageView, PromptInput, rp_text
from .picture import CardPicture
from .roster import RosterList

__all__ = ["SECTION_COLORS", "BudgetBar", "BudgetPanel", "bar_cells", "CardPicture", "MemoryPanel",
           "MessageView",
           "PromptInput", "RosterList", "rp_text"]
