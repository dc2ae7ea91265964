"""The command palette (ctrl+p): every chat action by name, plus mute/unmute per group member."""

from __future__ import annotations

from functools import partial
from typing import Any

from textual.command import DiscoveryHit, Hit, Hits, Provider

__all__ = ["ChatCommands"]

ACTIONS: list[tuple[str, str, str]] = [
    ("Regenerate the last reply (new swipe)", "regenerate", "ctrl+r"),
    ("Continue the last reply", "continue_reply", "ctrl+t"),
    ("Impersonate: write my next line", "impersonate", "ctrl+y"),
    ("Let the group take a round", "group_round", "ctrl+g"),
    ("Pick who speaks next", "pick_speaker", "ctrl+s"),
    ("New chat from a greeting", "new_chat", "ctrl+n"),
    ("Prompt inspector", "inspector", "f2"),
    ("Stop the reply", "stop", "esc"),
    ("Show or hide the side panel", "toggle_panel", "ctrl+b"),
    ("Edit the character's card", "edit_card", "f8"),
    ("Author's note for this chat", "author_note", "f9"),
    ("Edit the memory (summary of old messages)", "edit_memory", "palette"),
]
APP_ACTIONS: list[tuple[str, str, str]] = [
    ("Open a character or group", "pick_cast", "f3"),
    ("Choose a preset bundle", "pick_preset", "f4"),
    ("Choose a persona", "pick_persona", "f5"),
    ("Import a card, persona or SillyTavern preset", "import_file", "f6"),
    ("Settings: model, context, reply length, sampler", "settings", "f7"),
    ("Chats with this character or group (open, rename, delete)", "browse_chats", "ctrl+o"),
    ("Create a persona (your name and who you are)", "pick_persona", "f5"),
    ("Edit my persona", "edit_persona", "palette"),
    ("Help: every key", "help", "f1"),
]


class ChatCommands(Provider):
    """Chat actions for the palette; runs them on the chat screen."""

    def _commands(self) -> list[tuple[str, Any, str]]:
        from .screens.chat import ChatScreen

        app = self.app
        chat = next((s for s in app.screen_stack if isinstance(s, ChatScreen)), None)
        out: list[tuple[str, Any, str]] = []
        if chat is not None:
            out += [(name, partial(chat.run_action, action), key) for name, action, key in ACTIONS]
            session = chat.session
            if session.is_group and session.cast.roster is not None:
                muted = set(session.muted)
                for m in session.members:
                    verb = "Unmute" if m in muted else "Mute"
                    out.append((f"{verb} {m}", partial(chat.toggle_mute_named, m), "group"))
        out += [(name, partial(app.run_action, action), key) for name, action, key in APP_ACTIONS]
        return out

    async def discover(self) -> Hits:
        for name, run, key in self._commands():
            yield DiscoveryHit(name, run, help=key)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, run, key in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), run, help=key)
