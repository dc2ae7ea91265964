"""Group chats: who speaks next, which cards the prompt holds, and keeping replies to one speaker.

    speakers = pick_speakers(roster, cards, chat.messages, seed=f"{chat_id}:{len(chat.messages)}")
    fields = group_card_fields(roster, cards, speakers[0])          # join: same block for all
    stops = member_stop_strings(speakers[0], [m.name for m in members], user)
    reply = trim_reply(raw_reply, speakers[0], [m.name for m in members], user)
"""

from __future__ import annotations

from .activation import HistoryItem, as_history, mentioned_members, pick_speakers
from .fields import (
    CARD_FIELDS,
    DEFAULT_GENERATION_MODE,
    CardField,
    DepthPrompt,
    FieldPiece,
    GroupFields,
    group_card_fields,
    included_members,
    replace_char,
    resolve_mode,
)
from .greetings import GroupGreeting, group_greetings
from .members import (
    DEFAULT_TALKATIVENESS,
    GroupMember,
    group_macro,
    group_members,
    resolve_member,
    talkativeness,
)
from .names import member_stop_strings, others, trim_reply

__all__ = [
    "CARD_FIELDS",
    "DEFAULT_GENERATION_MODE",
    "DEFAULT_TALKATIVENESS",
    "CardField",
    "DepthPrompt",
    "FieldPiece",
    "GroupFields",
    "GroupGreeting",
    "GroupMember",
    "HistoryItem",
    "as_history",
    "group_card_fields",
    "group_greetings",
    "group_macro",
    "group_members",
    "included_members",
    "member_stop_strings",
    "mentioned_members",
    "others",
    "pick_speakers",
    "replace_char",
    "resolve_member",
    "resolve_mode",
    "talkativeness",
    "trim_reply",
]
