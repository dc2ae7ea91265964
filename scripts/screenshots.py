"""Write the README's screenshots (docs/chat.svg, inspector.svg, card-editor.svg, chats.svg)
from the real app.

The chat runs on the real ChatSession with a scripted reply (so the picture is the same every
time) and the SmolLM2 tokenizer for exact counts:  .venv/bin/python scripts/screenshots.py
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "tui")]

REPLY = ("*Wren snorts into her tea and pushes the biscuit tin across the table.* \"A **fool**, "
         "then. Sit closer to the stove, you're dripping on my Ledger.\" *She taps the book.* "
         "\"Tell me where you sailed from, and don't say Port Ellery: Tobias would have warned me.\"")


async def shoot(out: Path) -> None:
    from _scripted import ScriptedBackend

    from rp_context.models import default_model_path
    from rp_context.tokens import LlamaTokenizer
    from tui.app import RPChatApp
    from tui.config import Settings
    from tui.sessions import ChatSpec

    app = RPChatApp(spec=ChatSpec(), settings=Settings(), backend=ScriptedBackend([REPLY]),
                    counter=LlamaTokenizer(default_model_path()), save_settings_file=False,
                    cursor_blink=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        await pilot.press(*"I sailed toward the light, not away. My name is Tess.", "enter")
        for _ in range(2):
            await app.workers.wait_for_complete()
            await pilot.pause()
        app.save_screenshot(str(out / "chat.svg"))
        await pilot.press("f2")
        await pilot.pause()
        app.save_screenshot(str(out / "inspector.svg"))
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("f8")
        for _ in range(2):
            await app.workers.wait_for_complete()
            await pilot.pause()
        app.save_screenshot(str(out / "card-editor.svg"))
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("ctrl+n", "enter")  # a second chat, then the chat browser
        for _ in range(2):
            await app.workers.wait_for_complete()
            await pilot.pause()
        await pilot.press("ctrl+o")
        await pilot.pause()
        app.save_screenshot(str(out / "chats.svg"))


def main() -> int:
    out = REPO / "docs"
    out.mkdir(exist_ok=True)
    os.environ["RP_CONTEXT_HOME"] = tempfile.mkdtemp(prefix="rp-chat-shots-")
    asyncio.run(shoot(out))
    print(f"wrote chat.svg, inspector.svg, card-editor.svg and chats.svg in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
