"""A reasoning chat with the real default model: a preset whose prefill opens `<think>`, a token
budget that closes it, the reasoning stored apart, none of it sent back, the chat file
round-tripping as SillyTavern JSONL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rp_context.chat import chat_to_text, load_chat
from rp_context.cli import main
from rp_context.presets import load_preset
from rp_context.presets.yamlio import save_preset
from rp_context.reasoning import ReasoningFormat

pytestmark = pytest.mark.model


@pytest.fixture
def think_preset(tmp_path: Path) -> Path:
    chatml = load_preset("chatml", "instruct")
    fmt = ReasoningFormat(thinking=True, start_prefill="<think>\n", budget=12,
                          off_prefill="<think>\n\n</think>\n\n")
    path = tmp_path / "chatml-think.yaml"
    save_preset(chatml.model_copy(update={"name": "chatml-think", "reasoning": fmt}), path)
    return path


def test_reasoning_chat_with_the_default_model(think_preset, tmp_path, capsys, repo_dir) -> None:
    chat = tmp_path / "wren.jsonl"
    card = str(repo_dir / "cards" / "wren-halloway.json")
    code = main(["generate", "--card", card, "--preset", str(think_preset), "--chat", str(chat),
                 "-m", "Is the lamp lit tonight?", "--json", "--max-tokens", "20", "--seed", "7",
                 "--temperature", "0.7", "--context", "2048"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    # The prompt opened the block, the budget closed it: the reasoning is there, apart.
    assert out["reasoning"] and out["reasoning_duration"] is not None
    assert out["metrics"]["generated_tokens"] >= 1
    saved = load_chat(chat).chat
    reply = saved.messages[-1]
    assert reply.role == "assistant"
    assert reply.reasoning == out["reasoning"] and reply.text == out["text"]
    assert out["reasoning"] not in reply.text and "<think>" not in reply.text
    raw = json.loads(chat.read_text().splitlines()[-1])
    assert raw["extra"]["reasoning"] == out["reasoning"] and raw["extra"]["reasoning_type"] == "parsed"

    # The next prompt: the reply's text is there, its reasoning is not; the block opens again.
    from rp_context.models import default_model_path
    from rp_context.session import ChatSession
    from rp_context.tokens import LlamaTokenizer

    session = ChatSession.open(cards=[card], chat_path=chat, preset=str(think_preset),
                               backend=object(), counter=LlamaTokenizer(default_model_path()),
                               n_ctx=2048)
    session.send("Tell me more.")
    prompt = session.prompt().text
    if reply.text.strip():
        assert reply.text.strip() in prompt
    assert out["reasoning"] not in prompt
    assert prompt.endswith("<|im_start|>assistant\n<think>\n")

    # Thinking off for this chat: the empty block is written instead, and kept in the file.
    code = main(["generate", "--card", card, "--preset", str(think_preset), "--chat", str(chat),
                 "--no-think", "--json", "--max-tokens", "8", "--seed", "7", "--context", "2048"])
    assert code == 0
    off = json.loads(capsys.readouterr().out)
    assert off["reasoning"] == ""
    assert load_chat(chat).chat.header.chat_metadata["rp_context_thinking"] is False

    # SillyTavern JSONL both ways: reading and writing the file changes nothing.
    before = chat.read_text()
    assert chat_to_text(load_chat(chat).chat) == before


class Recording:
    """The real backend, with the prompts it was given written down."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.name = inner.name
        self.prompts: list[object] = []

    def stream(self, prompt, **kw):
        self.prompts.append(prompt)
        return self.inner.stream(prompt, **kw)


def test_budget_close_goes_on_from_the_cached_prompt(think_preset, tmp_path, repo_dir) -> None:
    from rp_context.backends.base import PromptInput
    from rp_context.backends.llama import LlamaBackend
    from rp_context.models import default_model_path
    from rp_context.session import ChatSession
    from rp_context.tokens import LlamaTokenizer

    model = default_model_path()
    backend = Recording(LlamaBackend(model, n_ctx=2048))
    session = ChatSession.open(cards=[repo_dir / "cards" / "wren-halloway.json"],
                               chat_path=tmp_path / "c.jsonl", preset=str(think_preset),
                               backend=backend, counter=LlamaTokenizer(model), n_ctx=2048)
    session.setup.sampler = session.setup.sampler.model_copy(update={"max_tokens": 16, "seed": 3})
    session.send("What do you keep in the logbook?")
    turn = session.reply()
    text = "".join(turn)
    assert len(backend.prompts) == 2  # the budget (12 tokens) closed the block once
    first, second = backend.prompts
    assert isinstance(second, PromptInput) and second.ids is not None and first.ids is not None
    assert list(second.ids[: len(first.ids)]) == list(first.ids)  # the prompt, then the reasoning
    closing = LlamaTokenizer(model).tokenize("\n</think>\n\n", special=True)
    assert list(second.ids[-len(closing):]) == closing
    metrics = backend.inner.last_result.metrics
    assert metrics.reused_tokens >= len(first.ids)  # llama.cpp read only the closing tokens anew
    assert turn.message is not None and turn.message.reasoning and turn.message.text == text.strip()
    assert len(LlamaTokenizer(model).tokenize(turn.message.reasoning)) <= 14


def test_show_reasoning_streams_it_to_stderr(think_preset, tmp_path, capsys, repo_dir) -> None:
    chat = tmp_path / "c.jsonl"
    code = main(["generate", "--card", str(repo_dir / "cards" / "wren-halloway.json"),
                 "--preset", str(think_preset), "--chat", str(chat), "-m", "Morning, Wren.",
                 "--show-reasoning", "--max-tokens", "8", "--seed", "1", "--context", "2048"])
    assert code == 0
    captured = capsys.readouterr()
    saved = load_chat(chat).chat.messages[-1]
    assert saved.reasoning and saved.reasoning in captured.err
    assert saved.reasoning not in captured.out
    assert captured.out.strip() == saved.text.strip()
