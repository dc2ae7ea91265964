"""Continue, impersonate and depth injections: the tail of the prompt as SillyTavern builds it."""

from __future__ import annotations

from rp_context.assembly import AssemblySettings, AuthorNote, assemble
from rp_context.cards import Card, Persona
from rp_context.chat import Chat, ChatHeader, ChatMessage
from rp_context.presets.library import load_preset


def _card() -> Card:
    return Card.model_validate({"spec": "chara_card_v2", "spec_version": "2.0", "data": {
        "name": "Wren", "description": "A keeper.", "extensions": {
            "depth_prompt": {"prompt": "{{char}} never leaves the light.", "depth": 1, "role": "system"}}}})


def _chat() -> Chat:
    return Chat(header=ChatHeader(user_name="Tess", character_name="Wren", create_date="2026-01-01@10h00m00s"),
                messages=[ChatMessage(id="0", name="Wren", role="assistant", text="Evening."),
                          ChatMessage(id="1", name="Tess", role="user", text="Hello."),
                          ChatMessage(id="2", name="Wren", role="assistant", text="Sit down, I")])


def _assemble(mode="normal", **kw):
    return assemble(cards=[_card()], chat=_chat(), instruct=load_preset("chatml", "instruct"),
                    context=load_preset("minimal", "context"), sysprompt=load_preset("blank", "sysprompt"),
                    mode=mode, **kw)


def test_continue_leaves_the_last_message_open() -> None:
    text = _assemble("continue").text
    assert text.endswith("<|im_start|>assistant\nSit down, I")
    assert text.count("<|im_start|>assistant\n") == 2


def test_impersonate_ends_with_the_users_header() -> None:
    text = _assemble("impersonate").text
    assert text.endswith("Sit down, I<|im_end|>\n<|im_start|>user\n")


def test_depth_injections_merge_per_depth_and_role_in_key_order() -> None:
    persona = Persona(name="Tess", description="Tess is a sailor.", position="at_depth", depth=1, role="system")
    settings = AssemblySettings(author_note=AuthorNote(text="[Keep it short.]", depth=1, role="system"))
    prompt = _assemble(settings=settings, persona=persona)
    text = prompt.text
    # one system turn one message from the end: author's note, then the card's note, then the persona
    block = "<|im_start|>system\n[Keep it short.]\nWren never leaves the light.\nTess is a sailor.<|im_end|>\n"
    assert block in text
    assert text.index(block) < text.index("Sit down, I") and text.index(block) > text.index("Hello.")
    ids = [s.id for s in prompt.segments]
    assert ids.index("author_note") < ids.index("depth_prompt:Wren") < ids.index("persona_depth")


def test_author_note_interval() -> None:
    settings = AssemblySettings(author_note=AuthorNote(text="[Note]", depth=0, interval=2))
    assert "[Note]" not in _assemble(settings=settings).text  # one user message: 1 % 2 != 0
    chat = _chat()
    chat.messages.append(ChatMessage(id="3", name="Tess", role="user", text="Well?"))
    text = assemble(cards=[_card()], chat=chat, instruct=load_preset("chatml", "instruct"),
                    context=load_preset("minimal", "context"), settings=settings).text
    assert "[Note]" in text


def test_keyword_lore_goes_to_the_tail_and_constant_lore_stays_on_top() -> None:
    card = Card.model_validate({"spec": "chara_card_v2", "spec_version": "2.0", "data": {
        "name": "Wren", "description": "A keeper.", "character_book": {"entries": [
            {"id": 1, "keys": ["lamp"], "content": "The lamp burns whale oil.", "enabled": True,
             "insertion_order": 100, "position": "before_char"},
            {"id": 2, "keys": [], "content": "The island is called Skerry.", "constant": True,
             "enabled": True, "insertion_order": 50, "position": "before_char"}]}}})
    chat = _chat()
    chat.messages.append(ChatMessage(id="3", name="Tess", role="user", text="Is the lamp lit?"))
    kw = dict(cards=[card], chat=chat, instruct=load_preset("chatml", "instruct"),
              context=load_preset("default", "context"))
    story = assemble(**kw, settings=AssemblySettings(keyword_lore="story")).text
    tail = assemble(**kw, settings=AssemblySettings(keyword_lore="tail")).text
    top_end = story.index("<|im_end|>")
    assert "whale oil" in story[:top_end] and "Skerry" in story[:top_end]
    top_end = tail.index("<|im_end|>")
    assert "Skerry" in tail[:top_end] and "whale oil" not in tail[:top_end]
    assert tail.index("whale oil") < tail.index("Is the lamp lit?")
    assert tail.index("whale oil") > tail.index("Sit down, I")
    # the top of the prompt no longer depends on which keywords the chat happens to mention
    chat.messages[-1].text = "Nice weather."
    assert assemble(**kw, settings=AssemblySettings(keyword_lore="tail")).text[:top_end] == tail[:top_end]


def test_world_info_at_depth_goes_into_the_chat() -> None:
    """An at-depth lorebook entry that fires becomes a system turn `depth` messages from the end."""
    from rp_context.cards.lorebook import WorldInfo, WorldInfoEntry

    fired = WorldInfoEntry.new(7, ["Hello"], "The lamp is lit.", position=4, depth=1).to_dict()
    quiet = WorldInfoEntry.new(8, ["kraken"], "A kraken waits.", position=4, depth=0).to_dict()
    book = WorldInfo.model_validate({"entries": {"7": fired, "8": quiet}}).to_lorebook("Coast")
    prompt = _assemble(lorebooks=[book])
    seg = prompt.by_id("lore:Coast:7")
    assert (seg.kind, seg.role, seg.depth, seg.text) == ("depth_injection", "system", 1, "The lamp is lit.")
    text = prompt.text
    assert text.index("Hello.") < text.index("The lamp is lit.") < text.index("Sit down, I")
    assert "kraken" not in text
