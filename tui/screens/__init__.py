"""The app's screens: the chat, the prompt inspector, the chat browser, help, editors and the
modal pickers."""

from .browser import ChatBrowserScreen
from .chat import ChatScreen
from .help import HelpScreen
from .inspector import InspectorScreen
from .modals import AskScreen, ConfirmScreen, EditScreen, ImportScreen, PickScreen, SettingsScreen

__all__ = ["AskScreen", "ChatBrowserScreen", "ChatScreen", "ConfirmScreen", "EditScreen",
           "HelpScreen", "ImportScreen", "InspectorScreen", "PickScreen", "SettingsScreen"]
