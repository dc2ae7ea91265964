"""Golden prompts: SillyTavern 1.12.6's text-completion algorithm, as written up in sillytavern.md.

The expected text is built here by hand from that document (§1.2 message formatting, §1.3 the
generation header, §2.3 the story string, §3.1 steps 17-26, §3.3 depth injection, §8 world
info), not by running our code: a fixed chat with the real Seraphina card, a lorebook hit, the
author's note at depth 2 and post-history instructions, for five of SillyTavern's presets.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rp_context.assembly import AssemblySettings, AuthorNote, assemble
from rp_context.cards import load_card
from rp_context.chat import Chat, ChatHeader, ChatMessage
from rp_context.presets.sillytavern import import_sillytavern_file
from rp_context.worldinfo import WorldInfoSettings

NOTE = "[Write in a calm, gentle tone.]"
PHI = "Reply as {{char}} only."


def _setup(reference_dir: Path, preset: str):
    st = reference_dir / "sillytavern"
    loaded = load_card(st / "cards" / "default_Seraphina.card.json").card
    card = loaded.model_copy(deep=True)
    card.data.post_history_instructions = PHI
    instruct = import_sillytavern_file(st / "instruct" / f"{preset}.json")
    context = import_sillytavern_file(st / "context" / f"{preset}.json")
    context = context.model_copy(update={"allow_jailbreak": True})
    sysprompt = import_sillytavern_file(st / "sysprompt" / "Neutral - Chat.json")
    chat = Chat(
        header=ChatHeader(user_name="User", character_name="Seraphina", create_date="2024-09-28@12h00m00s"),
        messages=[
            ChatMessage(id="0", name="Seraphina", role="assistant", text=card.data.first_mes),
            ChatMessage(id="1", name="User", role="user", text="Thank you. Where am I?"),
            ChatMessage(id="2", name="Seraphina", role="assistant", text="You are resting in my home, traveler."),
            ChatMessage(id="3", name="User", role="user", text="What lies beyond the forest?"),
        ],
    )
    # Recursion off (a SillyTavern world-info setting): entry 0's text names the other entries'
    # keys, and with recursion every entry would fire.
    settings = AssemblySettings(
        author_note=AuthorNote(text=NOTE, depth=2, role="system", interval=1),
        world_info=WorldInfoSettings(recursive=False),
    )
    prompt = assemble(cards=[card], chat=chat, instruct=instruct, context=context, sysprompt=sysprompt,
                      settings=settings)
    raw = json.loads((st / "cards" / "default_Seraphina.card.json").read_text())["data"]
    fields = {
        "system": "Write Seraphina's next reply in a fictional chat between Seraphina and User.",
        # baseChatReplace: macros, and \r removed (§3.1 step 5, step 26)
        "description": raw["description"].replace("\r", "").replace("{{char}}", "Seraphina").replace("{{user}}", "User"),
        # entry 0 fires on "forest" in the newest two messages (§8.3: world_info_depth 2)
        "wi": raw["character_book"]["entries"][0]["content"].replace("{{user}}", "User").replace("{{char}}", "Seraphina"),
        "greeting": raw["first_mes"],
    }
    return prompt, fields


def test_chatml(reference_dir: Path) -> None:
    prompt, f = _setup(reference_dir, "ChatML")
    story = f"<|im_start|>system\n{f['system']}\n{f['wi']}\n{f['description']}<|im_end|>\n"
    turns = (
        f"<|im_start|>assistant\nSeraphina: {f['greeting']}<|im_end|>\n"
        "<|im_start|>user\nUser: Thank you. Where am I?<|im_end|>\n"
        f"<|im_start|>system\n{NOTE}<|im_end|>\n"
        "<|im_start|>assistant\nSeraphina: You are resting in my home, traveler.<|im_end|>\n"
        "<|im_start|>user\nUser: What lies beyond the forest?<|im_end|>\n"
        "<|im_start|>user\nReply as Seraphina only.<|im_end|>\n"
        "<|im_start|>assistant\nSeraphina:"
    )
    assert prompt.text == story + turns


def test_llama3(reference_dir: Path) -> None:
    prompt, f = _setup(reference_dir, "Llama 3 Instruct")
    h = "<|start_header_id|>{}<|end_header_id|>\n\n"
    story = f"{h.format('system')}{f['system']}\n{f['wi']}\n{f['description']}<|eot_id|>"
    turns = (
        f"{h.format('assistant')}Seraphina: {f['greeting']}<|eot_id|>"
        f"{h.format('user')}User: Thank you. Where am I?<|eot_id|>"
        f"{h.format('user')}{NOTE}<|eot_id|>"  # system_same_as_user
        f"{h.format('assistant')}Seraphina: You are resting in my home, traveler.<|eot_id|>"
        f"{h.format('user')}User: What lies beyond the forest?<|eot_id|>"
        f"{h.format('user')}Reply as Seraphina only.<|eot_id|>"
        f"{h.format('assistant')}Seraphina:"
    )
    assert prompt.text == story + turns


def test_mistral_v3_tekken(reference_dir: Path) -> None:
    prompt, f = _setup(reference_dir, "Mistral V3-Tekken")
    story = f"[INST]{f['system']}\n{f['wi']}\n{f['description']}[/INST]Understood.</s>"
    align = "[INST]Let's get started. Please respond based on the information and instructions provided above."
    turns = (
        f"{align}"
        f"[/INST]Seraphina: {f['greeting']}</s>"
        "[INST]User: Thank you. Where am I?"
        f"[INST]{NOTE}"
        "[/INST]Seraphina: You are resting in my home, traveler.</s>"
        "[INST]User: What lies beyond the forest?"
        "[INST]Reply as Seraphina only."
        "[/INST]Seraphina:"
    )
    assert prompt.text == story + turns


def test_gemma2(reference_dir: Path) -> None:
    prompt, f = _setup(reference_dir, "Gemma 2")
    story = f"<start_of_turn>user\n{f['system']}\n{f['wi']}\n{f['description']}<end_of_turn>\n"
    turns = (
        f"<start_of_turn>model\n{f['greeting']}<end_of_turn>\n"  # names_behavior none
        "<start_of_turn>user\nThank you. Where am I?<end_of_turn>\n"
        f"<start_of_turn>user\n{NOTE}<end_of_turn>\n"
        "<start_of_turn>model\nYou are resting in my home, traveler.<end_of_turn>\n"
        "<start_of_turn>user\nWhat lies beyond the forest?<end_of_turn>\n"
        "<start_of_turn>user\nReply as Seraphina only.<end_of_turn>\n"
        "<start_of_turn>model\n"
    )
    assert prompt.text == story + turns


def test_alpaca(reference_dir: Path) -> None:
    prompt, f = _setup(reference_dir, "Alpaca")
    story = f"{f['system']}\n{f['wi']}\n{f['description']}\n\n\n"
    turns = (
        f"### Response:\n{f['greeting']}\n\n"  # names "force": none one-on-one
        "### Instruction:\nThank you. Where am I?\n\n"
        f"### Input:\n{NOTE}\n\n"
        "### Response:\nYou are resting in my home, traveler.\n\n"
        "### Instruction:\nWhat lies beyond the forest?\n\n"
        "### Instruction:\nReply as Seraphina only.\n\n"
        "### Response:\n"
    )
    assert prompt.text == story + turns


@pytest.mark.parametrize("preset", ["ChatML", "Llama 3 Instruct", "Mistral V3-Tekken", "Gemma 2", "Alpaca"])
def test_lore_decisions_are_recorded(reference_dir: Path, preset: str) -> None:
    prompt, _ = _setup(reference_dir, preset)
    decisions = {str(d.uid): d for d in prompt.lore.decisions}
    assert decisions["0"].status == "fired" and decisions["0"].matched_key == "forest"
    assert all(decisions[k].status == "no_match" for k in ("1", "2", "3"))


@pytest.mark.parametrize("preset", ["ChatML", "Gemma 2"])
def test_every_character_maps_to_a_segment(reference_dir: Path, preset: str) -> None:
    prompt, f = _setup(reference_dir, preset)
    flat = prompt.flatten()
    ids = {s.id for s in prompt.segments}
    spans = flat.char_map()
    assert spans[0][0] == 0 and spans[-1][1] == len(flat.text)
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))
    assert all(sid in ids for _, _, sid in spans)
    text = flat.text
    desc = next(s for s in prompt.segments if s.kind == "description")
    assert [text[a:b] for a, b, sid in spans if sid == desc.id] == [f["description"]]
    note = prompt.by_id("author_note")
    assert NOTE in flat.segment_text(note.id)


def test_recursion_fires_entries_named_by_fired_content(reference_dir: Path) -> None:
    """With recursion on (SillyTavern's default), entry 0's text triggers the other three."""
    st = reference_dir / "sillytavern"
    card = load_card(st / "cards" / "default_Seraphina.card.json").card
    chat = Chat(header=ChatHeader(user_name="User", character_name="Seraphina"),
                messages=[ChatMessage(id="0", name="User", role="user", text="What lies beyond the forest?")])
    prompt = assemble(cards=[card], chat=chat, instruct=import_sillytavern_file(st / "instruct" / "ChatML.json"),
                      context=import_sillytavern_file(st / "context" / "ChatML.json"))
    fired = {str(d.uid) for d in prompt.lore.decisions if d.status == "fired"}
    assert fired == {"0", "1", "2", "3"}
