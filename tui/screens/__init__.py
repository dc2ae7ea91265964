"""The app's screens: the chat, the prompt inspector, and the modal pickers and editors."""

from .chat import ChatScreen
from .inspector import InspectorScreen
from .modals import EditScreen, ImportScreen, PickScreen, SettingsScreen

__all__ = ["ChatScreen", "InspectorScreen", "EditScreen", "ImportScreen", "PickScreen", "SettingsScreen"]
