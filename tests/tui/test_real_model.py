"""The app with the real default model (SmolLM2 through llama.cpp): a reply streams in and is saved."""

from __future__ import annotations

from typing import Any

import pytest

from rp_context.chat import load_chat
from tui.app import RPChatApp
from tui.config import Settings
from tui.sessions import ChatSpec
from tui.widgets import BudgetPanel, MessageView


@pytest.mark.model
async def test_a_reply_from_the_default_model(smollm_path: Any) -> None:
    app = RPChatApp(spec=ChatSpec(), settings=Settings(context=2048), save_settings_file=False,
                    cursor_blink=False)
    app.session.setup.sampler = app.session.setup.sampler.model_copy(update={"max_tokens": 24, "seed": 7})
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press(*"Hello! Who are you?", "enter")
        for _ in range(2):
            await app.workers.wait_for_complete()
            await pilot.pause()
        metrics = app.session.last_metrics
        fitted = app.session.last_fitted
        assert metrics.backend == "llama.cpp" and metrics.prompt_tokens == len(fitted.ids)
        assert 0 < metrics.generated_tokens <= 24
        assert fitted.report.tokenizer == "exact"
        last = app.session.chat.messages[-1]
        assert last.role == "assistant" and last.text.strip()
        assert list(app.screen.query(MessageView))[-1].text == last.text
        assert load_chat(app.session.chat_path).chat.messages[-1].text == last.text
        panel = str(app.screen.query_one(BudgetPanel).query_one("#budget-turn").render())
        assert f"{metrics.tokens_per_second:.1f} tok/s" in panel
        # a second turn reuses the cached prefix
        await pilot.press(*"Tell me more.", "enter")
        for _ in range(2):
            await app.workers.wait_for_complete()
            await pilot.pause()
        assert app.session.last_metrics.reused_tokens > len(fitted.ids) // 2
    app.session.backend.close()
