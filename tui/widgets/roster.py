"""The group's members in the side panel: who is muted; Enter (or a click) mutes and unmutes."""

from __future__ import annotations

from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

__all__ = ["RosterList"]


class RosterList(OptionList):
    """Group members; selecting one asks the screen to toggle its mute."""

    class ToggleMute(Message):
        def __init__(self, member: str) -> None:
            super().__init__()
            self.member = member

    def set_members(self, members: list[str], muted: list[str]) -> None:
        highlighted = self.highlighted
        self.clear_options()
        for m in members:
            label = f"- {m} (muted)" if m in muted else f"+ {m}"
            self.add_option(Option(label, id=m))
        if highlighted is not None and members:
            self.highlighted = min(highlighted, len(members) - 1)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id is not None:
            self.post_message(self.ToggleMute(event.option.id))
