"""A reasoning chat with a scripted backend: stored apart, kept out of the prompt, round-trips
through a SillyTavern chat file; thinking switch, budget, continue and swipes."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from rp_context.backends.base import GenerationResult, PromptInput, ReplyStream, TurnMetrics
from rp_context.chat import load_chat
from rp_context.reasoning import THINKING_KEY, ReasoningFormat
from rp_context.session import ChatSession

THOUGHT = "Tess looks tired; Wren should offer tea before asking questions."


class ScriptedBackend:
    """Replies from a script, piece by piece (one piece stands for one token)."""

    name = "scripted"

    def __init__(self, replies: list[list[str]]) -> None:
        self.replies = list(replies)
        self.prompts: list[object] = []
        self.stops: list[list[str]] = []

    def stream(self, prompt, *, sampler=None, stop=(), **kw) -> ReplyStream:
        self.prompts.append(prompt)
        self.stops.append(list(stop))
        pieces = self.replies.pop(0)
        shown: list[str] = []

        def make(ev: threading.Event):
            for p in pieces:
                if ev.is_set():
                    return
                shown.append(p)
                yield p

        def finish() -> GenerationResult:
            return GenerationResult(text="".join(shown), token_ids=list(range(len(shown))),
                                    metrics=TurnMetrics(backend="scripted", prompt_tokens=0,
                                                        reused_tokens=0, evaluated_tokens=0,
                                                        generated_tokens=len(shown)))

        return ReplyStream(make, finish)


def prompt_text(prompt: object) -> str:
    if isinstance(prompt, PromptInput):
        assert prompt.text is not None
        return prompt.text
    assert isinstance(prompt, str)
    return prompt


@pytest.fixture
def session_for(repo_dir: Path, tmp_path: Path):
    from rp_context.tokens import TiktokenCounter

    def make(replies: list[list[str]], **fmt: object) -> ChatSession:
        s = ChatSession.open(cards=[repo_dir / "cards" / "wren-halloway.json"],
                             chat_path=tmp_path / "c.jsonl", backend=ScriptedBackend(replies),
                             counter=TiktokenCounter(), n_ctx=4096)
        s.setup.instruct = s.setup.instruct.model_copy(update={"reasoning": ReasoningFormat(**fmt)})
        return s

    return make


def chunks(text: str, size: int) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)]


@pytest.mark.parametrize("size", [1, 3, 7, 1000])
def test_reply_is_stored_apart_and_kept_out_of_the_prompt(session_for, tmp_path, size) -> None:
    reply = f"<think>\n{THOUGHT}\n</think>\n\n*Wren sets the kettle on.* Sit, love."
    s = session_for([chunks(reply, size), ["Fine."]])
    s.send("Hello, Wren.")
    turn = s.reply()
    deltas = list(turn.deltas())
    assert "".join(d.reasoning for d in deltas).strip() == THOUGHT
    assert "".join(d.text for d in deltas) == "*Wren sets the kettle on.* Sit, love."
    assert turn.reasoning.strip() == THOUGHT and not turn.thinking
    msg = turn.message
    assert msg is not None and msg.text == "*Wren sets the kettle on.* Sit, love."
    assert msg.reasoning == THOUGHT and msg.reasoning_type == "parsed"
    assert msg.reasoning_duration is not None and msg.reasoning_duration >= 0
    # saved the SillyTavern way
    raw = [json.loads(line) for line in (tmp_path / "c.jsonl").read_text().splitlines()]
    assert raw[-1]["mes"] == msg.text
    assert raw[-1]["extra"]["reasoning"] == THOUGHT
    assert raw[-1]["extra"]["reasoning_type"] == "parsed"
    assert isinstance(raw[-1]["extra"]["reasoning_duration"], int)
    # the next prompt carries the reply but none of its reasoning
    s.send("Thanks.")
    "".join(s.reply())
    nxt = prompt_text(s.backend.prompts[-1]) if not isinstance(s.backend.prompts[-1], list) else s.last_fitted.text
    assert "Sit, love." in nxt and "offer tea" not in nxt and "<think>" not in nxt


def test_iterating_a_turn_yields_text_only(session_for) -> None:
    s = session_for([["<think>", "plan", "</think>", "Hi", " there."]])
    assert list(s.reply()) == ["Hi", " there."]


def test_add_the_last_n_reasonings_to_the_prompt(session_for) -> None:
    s = session_for([["<think>zebra-plan</think>First."], ["<think>otter-plan</think>Second."],
                     ["Third."]], add_to_prompt=1)
    for said in ("a", "b", "c"):
        s.send(said)
        "".join(s.reply())
    text = s.last_fitted.text
    assert "<think>\notter-plan\n</think>\n\nSecond." in text  # the newest reply's, formatted
    assert "zebra-plan" not in text and "First." in text  # older reasoning stays out
    with_it = s.prompt()
    s.setup.instruct.reasoning.add_to_prompt = 0
    without = s.prompt()
    assert "otter-plan" in with_it.text and "otter-plan" not in without.text
    assert with_it.report.tokens > without.report.tokens  # the budget counts it


def test_a_sillytavern_chat_round_trips(session_for, tmp_path, repo_dir) -> None:
    st = [
        {"user_name": "Tess", "character_name": "Wren Halloway", "create_date": "2025-1-1@10h00m00s",
         "chat_metadata": {}},
        {"name": "Tess", "is_user": True, "is_system": False, "send_date": "January 1, 2025 10:00am",
         "mes": "What's in the pot?", "extra": {}},
        {"name": "Wren Halloway", "is_user": False, "is_system": False,
         "send_date": "January 1, 2025 10:01am", "mes": "Stew, love.",
         "extra": {"api": "textgenerationwebui", "model": "qwen3", "reasoning": THOUGHT,
                   "reasoning_duration": 4210, "reasoning_type": "parsed"},
         "swipes": ["Stew, love."], "swipe_id": 0,
         "swipe_info": [{"send_date": "January 1, 2025 10:01am",
                         "extra": {"reasoning": THOUGHT, "reasoning_duration": 4210}}]},
        # an old reply saved with its thoughts inline (auto-parse was off)
        {"name": "Wren Halloway", "is_user": False, "is_system": False, "mes":
         "<think>\nshe is hungry\n</think>\n\nEat up.", "extra": {}},
    ]
    path = tmp_path / "c.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in st) + "\n")
    s = session_for([["Aye."]])
    msg = s.chat.messages[1]
    assert msg.reasoning == THOUGHT and msg.reasoning_duration == pytest.approx(4.21)
    text = s.prompt().text
    assert "Stew, love." in text and "offer tea" not in text
    assert "Eat up." in text and "she is hungry" not in text  # inline block stripped too
    s.send("Lovely.")
    "".join(s.reply())
    again = [json.loads(line) for line in path.read_text().splitlines()]
    for before, after in zip(st[1:], again[1:4], strict=True):
        for key, value in before.items():
            assert after[key] == value, key


def test_template_opened_block_and_thinking_switch(session_for) -> None:
    s = session_for([["Plan: tea", ".\n</think>", "\n\nKettle's on."], ["Hello."]],
                    start_prefill="<think>\n", off_prefill="<think>\n\n</think>\n\n",
                    off_switch=" /no_think")
    s.send("Hi.")
    s.set_thinking(True)
    assert s.thinking is True and s.chat.header.chat_metadata[THINKING_KEY] is True
    turn = s.reply()
    assert s.last_fitted.text.endswith("<|im_start|>assistant\n<think>\n")
    assert "".join(turn) == "Kettle's on."
    assert turn.message.reasoning == "Plan: tea."
    s.set_thinking(False)
    s.send("Bye.")
    turn = s.reply()
    text = s.last_fitted.text
    assert text.endswith("<think>\n\n</think>\n\n") and "Bye. /no_think" in text
    assert "".join(turn) == "Hello." and turn.message.reasoning == ""
    reloaded = load_chat(s.chat_path).chat
    assert reloaded.header.chat_metadata[THINKING_KEY] is False


def test_budget_closes_the_block_and_the_reply_follows(session_for) -> None:
    s = session_for([["<think>", "a", " b", " c", " d", " e", " f"], ["Done", " now."]], budget=3)
    s.send("Quick!")
    turn = s.reply()
    assert "".join(turn) == "Done now."
    second = prompt_text(s.backend.prompts[1])  # text: this counter is only an estimate
    assert second.startswith(s.last_fitted.text)  # the same prompt, extended
    assert second.endswith("<|im_start|>assistant\n<think>a b c\n</think>\n\n")
    assert turn.message.reasoning == "a b c" and turn.message.text == "Done now."
    assert turn.metrics.generated_tokens == 4 + 2  # both streams' tokens


def test_continue_resumes_unfinished_reasoning(session_for) -> None:
    s = session_for([["<think>", "part one"], [" and two", "</think>", "Done."]])
    s.send("Think hard.")
    turn = s.reply()
    "".join(turn)
    msg = turn.message
    assert msg is not None and msg.text == "" and msg.reasoning == "part one"
    turn = s.reply(kind="continue")
    assert s.last_fitted.text.endswith("<think>\npart one")  # the block is left open
    assert "".join(turn) == "Done."
    assert msg.reasoning == "part one and two" and msg.text == "Done."


def test_each_swipe_keeps_its_reasoning(session_for) -> None:
    s = session_for([["<think>first thought</think>One."], ["Two."]])
    s.send("Go.")
    "".join(s.reply())
    "".join(s.reply(kind="swipe"))
    msg = s.chat.messages[-1]
    assert msg.text == "Two." and msg.reasoning == ""
    assert s.swipe(msg.id, -1) and msg.text == "One." and msg.reasoning == "first thought"
    assert s.swipe(msg.id, 1) and msg.reasoning == ""
    reloaded = load_chat(s.chat_path).chat.messages[-1]
    assert [i["extra"].get("reasoning") for i in reloaded.swipe_info] == ["first thought", None]


def test_parse_off_keeps_the_reply_whole(session_for) -> None:
    s = session_for([["<think>x</think>Hi."]], parse=False)
    s.send("Hey.")
    turn = s.reply()
    assert "".join(turn) == "<think>x</think>Hi." and turn.message.reasoning == ""


def test_stop_strings_that_are_reasoning_markers_wait_for_the_text(session_for) -> None:
    """gpt-oss: `<|end|>` closes the analysis channel and also ends a reply. The backend is not
    told to stop on it; the session stops the reply text there."""
    harmony = ["<|channel|>analysis<|message|>", "Greet back.", "<|end|>", "<|start|>assistant",
               "<|channel|>final<|message|>", "Hi there", "<|e", "nd|>", "never shown"]
    s = session_for([harmony, ["Bye <|"]])
    s.setup.instruct = s.setup.instruct.model_copy(update={"stop_sequence": "<|end|>"})
    s.send("Hello.")
    turn = s.reply()
    assert "".join(turn) == "Hi there"
    assert "<|end|>" in turn.fitted.stop and "<|end|>" not in s.backend.stops[0]
    assert turn.message.reasoning == "Greet back." and turn.message.text == "Hi there"
    s.send("Go on.")
    turn = s.reply()  # a held start of a stop string that never completes is text after all
    assert "".join(turn) == "Bye <|" and turn.message.text == "Bye <|"


def test_a_consumer_that_stops_early_still_commits_the_reasoning(session_for) -> None:
    s = session_for([["<think>", "weighing it", "</think>", "Yes", ", and", " more"]])
    s.send("Well?")
    turn = s.reply()
    it = iter(turn)
    assert next(it) == "Yes"
    it.close()
    assert turn.committed and turn.message is not None
    assert turn.message.reasoning == "weighing it" and turn.message.text == "Yes"
    assert load_chat(s.chat_path).chat.messages[-1].reasoning == "weighing it"


def test_a_reply_that_began_mid_block_unasked_is_split_when_it_ends(session_for) -> None:
    """An R1-style model whose own template would have opened `<think>`: the lone closer tells."""
    s = session_for([["She wants tea", ".\n</think>", "\n\nKettle's on."]])
    s.send("Tea?")
    turn = s.reply()
    "".join(turn)
    assert turn.message.reasoning == "She wants tea." and turn.message.text == "Kettle's on."


def test_editing_the_reasoning_is_saved_and_marked(session_for) -> None:
    s = session_for([["<think>first</think>Hi."]])
    s.send("Yo.")
    msg = s.reply()
    "".join(msg)
    reply = msg.message
    s.edit_reasoning(reply.id, "  better thought ")
    saved = load_chat(s.chat_path).chat.messages[-1]
    assert saved.reasoning == "better thought" and saved.reasoning_type == "edited"
    assert saved.swipe_info[0]["extra"]["reasoning"] == "better thought"
    s.edit_reasoning(reply.id, "")
    assert load_chat(s.chat_path).chat.messages[-1].reasoning == ""
    user = s.chat.messages[-2]
    s.edit_reasoning(user.id, "added by hand")
    assert load_chat(s.chat_path).chat.messages[-2].reasoning_type == "manual"
