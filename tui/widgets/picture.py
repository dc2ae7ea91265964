"""The character's picture in the side panel: drawn with textual-image where the terminal can
show it (Kitty graphics, Sixel, or coloured half cells), else one plain line about it."""

from __future__ import annotations

import io
from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

__all__ = ["CardPicture", "image_widget"]


def image_widget(data: bytes, **kw: Any) -> Any:
    """A textual-image widget for the picture, or None when textual-image or PIL cannot draw it."""
    try:
        from PIL import Image as PILImage
        from textual_image.widget import Image
    except ImportError:
        return None
    try:
        picture = PILImage.open(io.BytesIO(data))
        picture.load()
    except (OSError, ValueError):
        return None
    return Image(picture, **kw)


def _describe(data: bytes) -> str:
    try:
        from PIL import Image as PILImage

        with PILImage.open(io.BytesIO(data)) as im:
            return f"{im.width}×{im.height} {im.format or 'image'}"
    except (ImportError, OSError, ValueError):
        return "an image this terminal cannot show"


class CardPicture(Vertical):
    """Shows one card's picture; hidden when the card has none."""

    DEFAULT_CSS = """
    CardPicture { height: auto; margin-bottom: 1; }
    CardPicture #picture-image { width: 100%; height: 14; }
    CardPicture #picture-note { color: $text-muted; height: auto; }
    """

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.key: str | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="picture-note", markup=False)

    async def show_picture(self, key: str | None, name: str, data: bytes | None) -> None:
        """Show `data` (the card's image bytes) under `key`; the same key again changes nothing."""
        if key == self.key:
            return
        self.key = key
        for old in self.query("#picture-image"):
            await old.remove()
        note = self.query_one("#picture-note", Static)
        self.display = data is not None
        if data is None:
            return
        widget = image_widget(data, id="picture-image")
        if widget is None:
            note.update(f"{name}'s picture: {_describe(data)}")
            note.display = True
            return
        note.display = False
        await self.mount(widget, before=note)
