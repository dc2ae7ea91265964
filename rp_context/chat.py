"""Chats, stored as SillyTavern-compatible JSONL so they move both ways between the two apps.

A file is one JSON object per line: a header (`user_name`, `character_name`, `create_date`,
`chat_metadata`) and then one message per line (`name`, `is_user`, `is_system`, `send_date`,
`mes`, `extra`, and for replies `swipes`, `swipe_id`, `swipe_info`). SillyTavern's group chats
have no header line; that is kept as it was.

In memory a message has an `id`, the speaker's `name`, a `role` (user, assistant, or system for
SillyTavern's narrator messages), its `text`, `swipes` and the selected `swipe_id`, the raw
`send_date`, `hidden` (SillyTavern's `is_system`: kept out of the prompt) and `extra`. Keys
rp-context does not know stay on the message and are written back. The id is saved in the
message as `rp_context_id`, which SillyTavern ignores and keeps.

A line that is not whole JSON (a crash mid-write, a bad edit) never stops the load: the whole
lines load, the broken ones are reported and kept, and saving writes them back unchanged at the
end, so nothing is ever cut from the file.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

from pydantic import BaseModel, Field, ValidationError, ValidationInfo, model_validator

from ._types import Role
from .atomic import write_bytes_atomic
from .cards._base import LosslessModel, Warn, as_bool, as_number, as_text, as_text_list, warner
from .errors import ChatFileError, RPContextError
from .files import read_limited
from .safeload import clean_surrogates, loads_json

__all__ = [
    "Chat",
    "ChatFile",
    "ChatHeader",
    "ChatMessage",
    "MessageRole",
    "Opening",
    "UnreadableLine",
    "chat_from_text",
    "chat_to_text",
    "load_chat",
    "parse_send_date",
    "save_chat",
    "st_timestamp",
]

MessageRole = Role
MAX_CHAT_BYTES = 512 * 1024 * 1024
MAX_CHAT_LINE_BYTES = 4 * 1024 * 1024
"""A chat line (one message with its swipes) longer than this is refused: kept in the file as an
unreadable line, never parsed, so one huge paste cannot stall every render of the chat."""
ID_KEY = "rp_context_id"
MUTED_KEY = "rp_context_muted"
"""Chat-metadata key holding the group members muted in this chat."""
_REASONING_KEYS = ("reasoning", "reasoning_duration", "reasoning_type")
_MONTHS = [
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
]


# ------------------------------------------------------------------------------- timestamps


def st_timestamp(when: _dt.datetime | None = None) -> str:
    """A `send_date` as SillyTavern writes it: `June 19, 2023 2:20pm` (local time)."""
    t = when or _dt.datetime.now()
    if t.tzinfo is not None:
        t = t.astimezone()
    hour = t.hour % 12 or 12
    return f"{_MONTHS[t.month - 1]} {t.day}, {t.year} {hour}:{t.minute:02d}{'pm' if t.hour >= 12 else 'am'}"


def _st_create_date(when: _dt.datetime | None = None) -> str:
    t = when or _dt.datetime.now()
    return f"{t.year}-{t.month}-{t.day}@{t.hour:02d}h{t.minute:02d}m{t.second:02d}s"


_MERIDIEM = re.compile(r"(\w+)\s(\d{1,2}),\s(\d{4})\s(\d{1,2}):(\d{1,2})(am|pm)", re.IGNORECASE)
_HUMAN_COMPACT = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})@(\d{1,2})h(\d{1,2})m(\d{1,2})s")
_HUMAN_SPACED = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2}) @(\d{1,2})h (\d{1,2})m (\d{1,2})s (\d{1,3})ms")


def parse_send_date(value: Any) -> _dt.datetime | None:
    """Every timestamp form SillyTavern has written: epoch milliseconds, `June 19, 2023 2:20pm`,
    `2024-7-12@01h31m37s`, `2024-6-5 @14h 56m 50s 682ms` (read as UTC, as SillyTavern does)
    and ISO 8601. None when the value is empty or unreadable."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.isdigit()):
        try:
            return _dt.datetime.fromtimestamp(float(value) / 1000, tz=_dt.UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str) or len(value) > 64:  # no timestamp is longer; the patterns
        return None  # below would take quadratic time on a long run of letters
    try:
        if m := _MERIDIEM.search(value):
            month = next(i for i, name in enumerate(_MONTHS, 1) if name.lower().startswith(m[1].lower()[:3]))
            hour = int(m[4]) % 12 + (12 if m[6].lower() == "pm" else 0)
            return _dt.datetime(int(m[3]), month, int(m[2]), hour, int(m[5]))
        if m := _HUMAN_SPACED.search(value):
            y, mo, d, h, mi, s, ms = (int(x) for x in m.groups())
            return _dt.datetime(y, mo, d, h, mi, s, ms * 1000, tzinfo=_dt.UTC)
        if m := _HUMAN_COMPACT.search(value):
            y, mo, d, h, mi, s = (int(x) for x in m.groups())
            return _dt.datetime(y, mo, d, h, mi, s, tzinfo=_dt.UTC)
        return _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, StopIteration):
        return None


# ---------------------------------------------------------------------------------- models


_assignments = 0


def message_edits() -> int:
    """How many field assignments `ChatMessage`s have had: a cache that saw the same message
    objects at the same count saw every field as it is now (in-place edits all assign)."""
    return _assignments


class ChatMessage(LosslessModel):
    """One message; unknown SillyTavern keys (force_avatar, swipe_info, gen_started...) are kept."""

    _always: ClassVar[frozenset[str]] = frozenset({"id", "name", "role", "text", "hidden", "extra"})

    id: str
    name: str = ""
    role: MessageRole = "assistant"
    text: str = ""
    swipes: list[str] | None = None
    """Alternative replies; `text` is the selected one."""
    swipe_id: int | None = None
    send_date: str | int | float | None = None
    """The timestamp exactly as the file has it; see `timestamp`."""
    hidden: bool = False
    """Kept out of the prompt (SillyTavern's is_system: hidden and UI messages)."""
    extra: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _lenient(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, dict):
            value = dict(value)
            warn = warner(info)
            for key in ("name", "text"):
                as_text(value, key, key, warn)
            as_text_list(value, "swipes", "swipes", warn, null_means_absent=True)
            as_number(value, "swipe_id", "swipe_id", warn, integer=True)
            if value.get("extra") is None and "extra" in value:
                value["extra"] = {}
            if "id" in value and not isinstance(value["id"], str):
                value["id"] = str(value["id"])
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        global _assignments
        _assignments += 1
        super().__setattr__(name, value)

    @property
    def timestamp(self) -> _dt.datetime | None:
        return parse_send_date(self.send_date)

    @property
    def is_user(self) -> bool:
        return self.role == "user"

    # -- reasoning, stored the SillyTavern way in `extra` ------------------------------------
    @property
    def reasoning(self) -> str:
        """The reply's reasoning block (`extra.reasoning`), kept apart from `text`; "" if none."""
        value = self.extra.get("reasoning")
        return value if isinstance(value, str) else ""

    @property
    def reasoning_duration(self) -> float | None:
        """Seconds the model spent reasoning (stored as milliseconds in
        `extra.reasoning_duration`, as SillyTavern does); None when unknown."""
        value = self.extra.get("reasoning_duration")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        return value / 1000

    @property
    def reasoning_type(self) -> str | None:
        """Where the reasoning came from: `parsed` from the reply, `model` (apart from the
        reply), `manual` or `edited` by hand (`extra.reasoning_type`)."""
        value = self.extra.get("reasoning_type")
        return value if isinstance(value, str) else None

    def set_reasoning(self, reasoning: str, *, duration_s: float | None = None,
                      kind: str = "parsed") -> None:
        """Store (or, with "", remove) the reasoning of the selected reply; it is kept in that
        swipe's `swipe_info` too, so it follows its swipe."""
        for key in _REASONING_KEYS:
            self.extra.pop(key, None)
        if reasoning:
            self.extra["reasoning"] = reasoning
            self.extra["reasoning_duration"] = (
                round(duration_s * 1000) if duration_s is not None else None)
            self.extra["reasoning_type"] = kind
        self._keep_swipe_reasoning()

    def edit_reasoning(self, reasoning: str) -> None:
        """Replace (or with "" remove) the reasoning by hand: `edited`, as SillyTavern marks it
        (`manual` when there was none)."""
        kind = "edited" if self.reasoning else "manual"
        self.set_reasoning(reasoning.strip(), duration_s=self.reasoning_duration, kind=kind)

    def set_text(self, text: str) -> None:
        """Replace the text shown, and the selected swipe with it."""
        self.text = text
        if self.swipes:
            self.swipes[self.swipe_id or 0] = text

    def extend(self, text: str, reasoning: str = "", *, duration_s: float | None = None) -> None:
        """Go on with this reply (a continue): `text` after its text, `reasoning` after an
        unfinished reasoning block, the seconds spent added to its duration."""
        self.set_text(self.text + text)
        if reasoning:
            before = self.reasoning_duration or 0.0
            self.set_reasoning((self.reasoning + reasoning).strip(),
                               duration_s=before + (duration_s or 0.0))

    def select_swipe(self, index: int) -> None:
        """Show swipe `index` (clamped to the swipes there are) with its own reasoning."""
        if not self.swipes:
            self.swipes = [self.text]
        self.swipe_id = max(0, min(index, len(self.swipes) - 1))
        self.text = self.swipes[self.swipe_id]
        self._restore_swipe_reasoning()

    def step_swipe(self, step: int) -> bool:
        """Show the previous (-1) or next (+1) stored swipe; False when there is none that way."""
        index = (self.swipe_id or 0) + step
        if not 0 <= index < len(self.swipes or [self.text]):
            return False
        self.select_swipe(index)
        return True

    def add_swipe(self, text: str, *, select: bool = True) -> int:
        """Add an alternative reply; returns its index."""
        if not self.swipes:
            self.swipes = [self.text]
            self.swipe_id = 0
        self.swipes.append(text)
        if select:
            self.select_swipe(len(self.swipes) - 1)
        return len(self.swipes) - 1

    def _keep_swipe_reasoning(self) -> None:
        """SillyTavern keeps each swipe's `extra` in `swipe_info`: the selected swipe's reasoning
        is written there too (only once a swipe of this message has any)."""
        info = getattr(self, "swipe_info", None)
        if not self.reasoning and not isinstance(info, list):
            return
        entries = list(info) if isinstance(info, list) else []
        while len(entries) < len(self.swipes or [self.text]):
            entries.append({"send_date": self.send_date, "extra": {}})
        idx = self.swipe_id or 0
        entry = dict(entries[idx]) if isinstance(entries[idx], dict) else {}
        extra = {k: v for k, v in dict(entry.get("extra") or {}).items() if k not in _REASONING_KEYS}
        extra.update({k: self.extra[k] for k in _REASONING_KEYS if k in self.extra})
        entry["extra"] = extra
        entries[idx] = entry
        self.swipe_info = entries

    def _restore_swipe_reasoning(self) -> None:
        """The selected swipe's reasoning from `swipe_info` (none if it had none)."""
        info = getattr(self, "swipe_info", None)
        idx = self.swipe_id or 0
        if not isinstance(info, list) or idx >= len(info) or not isinstance(info[idx], dict):
            return
        extra = info[idx].get("extra") or {}
        for key in _REASONING_KEYS:
            self.extra.pop(key, None)
            if isinstance(extra, dict) and key in extra:
                self.extra[key] = extra[key]


class ChatHeader(LosslessModel):
    """The first line of a SillyTavern chat file."""

    _always: ClassVar[frozenset[str]] = frozenset({"user_name", "character_name", "create_date", "chat_metadata"})

    user_name: str = "User"
    character_name: str = ""
    create_date: str | int | float = ""
    chat_metadata: dict[str, Any] = Field(default_factory=dict)
    """SillyTavern's per-chat settings (author's note, scenario override, world, ...), kept."""

    @model_validator(mode="before")
    @classmethod
    def _lenient(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, dict):
            value = dict(value)
            warn = warner(info)
            as_text(value, "user_name", "header user_name", warn)
            as_text(value, "character_name", "header character_name", warn)
            if value.get("chat_metadata") is None and "chat_metadata" in value:
                value["chat_metadata"] = {}
        return value


class UnreadableLine(BaseModel):
    """A line that is not a whole JSON object; written back unchanged when the chat is saved."""

    line: int
    """1-based line number in the file it came from."""
    text: str
    """The line exactly (undecodable bytes as surrogate escapes)."""
    reason: str


class Chat(BaseModel):
    """A conversation: an optional header and the messages in order."""

    header: ChatHeader | None = None
    """None for SillyTavern group chats, which have no header line."""
    messages: list[ChatMessage] = Field(default_factory=list)
    unreadable: list[UnreadableLine] = Field(default_factory=list)
    """Broken lines from the file this chat was read from; saved back at the end."""

    @classmethod
    def new(cls, character_name: str, user_name: str = "User") -> Chat:
        """An empty chat with a fresh header."""
        return cls(
            header=ChatHeader(
                user_name=user_name,
                character_name=character_name,
                create_date=_st_create_date(),
                chat_metadata={},
            )
        )

    @property
    def user_name(self) -> str:
        return self.header.user_name if self.header else "User"

    @property
    def character_name(self) -> str:
        return self.header.character_name if self.header else ""

    def next_id(self) -> str:
        """A message id not used yet: one past the highest numeric id."""
        numbers = [int(m.id) for m in self.messages if m.id.isdigit()]
        candidate = max(numbers, default=-1) + 1
        used = {m.id for m in self.messages}
        while str(candidate) in used:  # pragma: no cover - only with odd hand-made ids
            candidate += 1
        return str(candidate)

    def append(
        self,
        name: str,
        role: MessageRole,
        text: str,
        *,
        hidden: bool = False,
        swipes: list[str] | None = None,
        extra: dict[str, Any] | None = None,
        when: _dt.datetime | None = None,
    ) -> ChatMessage:
        """Add a message at the end, with a new id and SillyTavern's timestamp format."""
        message = ChatMessage(
            id=self.next_id(),
            name=name,
            role=role,
            text=text,
            hidden=hidden,
            extra=dict(extra or {}),
            send_date=st_timestamp(when),
        )
        if swipes:
            message.swipes = list(swipes)
            message.swipe_id = swipes.index(text) if text in swipes else 0
            message.text = message.swipes[message.swipe_id]
        elif role != "user":
            message.swipes = [text]
            message.swipe_id = 0
        self.messages.append(message)
        return message

    def find(self, message_id: str) -> ChatMessage | None:
        return next((m for m in self.messages if m.id == message_id), None)

    def message(self, message_id: str) -> ChatMessage:
        """The message with this id; RPContextError when the chat has none."""
        found = self.find(message_id)
        if found is None:
            raise RPContextError(f"no message with id {message_id!r} in this chat")
        return found

    def delete(self, message_id: str) -> None:
        """Remove a message (RPContextError when the chat has none with this id)."""
        self.messages.remove(self.message(message_id))

    def start(self, openings: Sequence[Opening]) -> None:
        """Start over: one greeting per opening speaker, the speaker's other greetings kept as
        its swipes (SillyTavern's alternate greetings)."""
        self.messages = []
        for opening in openings:
            if opening.greetings:
                message = self.append(opening.name, "assistant", "", swipes=list(opening.greetings))
                message.select_swipe(opening.selected)

    @property
    def muted(self) -> list[str] | None:
        """The group members muted in this chat, as its metadata keeps them (None: not kept)."""
        saved = self.header.chat_metadata.get(MUTED_KEY) if self.header else None
        return [str(x) for x in saved] if isinstance(saved, list) else None

    def keep_muted(self, names: Sequence[str]) -> None:
        """Keep the muted members in the chat's metadata (a group chat without a header has none)."""
        if self.header is not None:
            self.header.chat_metadata[MUTED_KEY] = list(names)


class Opening(NamedTuple):
    """Who opens a new chat: the speaker, their greetings, and which one is shown."""

    name: str
    greetings: Sequence[str]
    selected: int = 0


# ----------------------------------------------------------------------- SillyTavern mapping

_MESSAGE_KEYS = {"name", "is_user", "is_system", "send_date", "mes", "extra", "swipes", "swipe_id", ID_KEY}


def _message_from_st(raw: dict[str, Any], line: int, warn: Warn) -> ChatMessage:
    raw = dict(raw)
    at = f"line {line}"
    for key in ("is_user", "is_system"):
        as_bool(raw, key, f"{at} {key}", warn, null_means_absent=False)
        if raw.get(key) is None:
            raw[key] = False
    extra = raw.get("extra")
    if extra is not None and not isinstance(extra, dict):
        warn(f"{at}: extra was not an object; kept it as rp_context_extra")
        raw["rp_context_extra"] = extra
        extra = None
    extra = dict(extra or {})
    if raw.get("is_user"):
        role: MessageRole = "user"
    elif extra.get("type") == "narrator":
        role = "system"
        del extra["type"]  # the role says it; written back on save
    else:
        role = "assistant"
    body: dict[str, Any] = {
        "name": raw.get("name", ""),
        "role": role,
        "text": raw.get("mes", ""),
        "hidden": bool(raw.get("is_system")),
        "extra": extra,
    }
    if ID_KEY in raw:
        body["id"] = raw[ID_KEY]
    for key in ("swipes", "swipe_id", "send_date"):
        if key in raw:
            body[key] = raw[key]
    for key, value in raw.items():
        if key not in _MESSAGE_KEYS and key not in body:
            body[key] = value
    body.setdefault("id", "")
    sink: list[str] = []
    message = ChatMessage.model_validate(body, context={"warnings": sink})
    for msg in sink:
        warn(f"{at}: {msg}")
    if message.swipes and message.swipe_id is not None:
        if not 0 <= message.swipe_id < len(message.swipes):
            warn(f"{at}: swipe_id {message.swipe_id} is outside its {len(message.swipes)} swipes")
        elif message.swipes[message.swipe_id] != message.text:
            warn(f"{at}: the message text differs from its selected swipe; kept both")
    return message


def _message_to_st(message: ChatMessage) -> dict[str, Any]:
    extra = dict(message.extra)
    if message.role == "system":
        extra["type"] = "narrator"
    elif extra.get("type") == "narrator":
        del extra["type"]
    out: dict[str, Any] = {
        "name": message.name,
        "is_user": message.role == "user",
        "is_system": message.hidden,
    }
    if message.send_date is not None:
        out["send_date"] = message.send_date
    out["mes"] = message.text
    out["extra"] = extra
    if message.swipes is not None:
        out["swipes"] = list(message.swipes)
    if message.swipe_id is not None:
        out["swipe_id"] = message.swipe_id
    out.update(message.model_extra or {})
    out[ID_KEY] = message.id
    return out


# -------------------------------------------------------------------------------- files


@dataclass
class ChatFile:
    """A chat with the file it came from and what was repaired or skipped while reading."""

    chat: Chat
    path: Path | None = None
    warnings: list[str] = field(default_factory=list)


def _is_header(obj: dict[str, Any]) -> bool:
    return "mes" not in obj and bool({"user_name", "character_name", "chat_metadata", "create_date"} & set(obj))


def _chat_bytes(text: str) -> bytes:
    """Text back to its bytes: surrogate escapes stand for raw bytes, other lone ones for U+FFFD."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return re.sub("[\ud800-\udc7f\udd00-\udfff]", "\ufffd", text).encode("utf-8", "surrogateescape")


def chat_from_text(data: bytes | str, *, path: Path | None = None) -> ChatFile:
    """Read SillyTavern JSONL; broken lines are reported and kept, never fatal unless all are."""
    raw_bytes = _chat_bytes(data) if isinstance(data, str) else data
    if raw_bytes.startswith(b"\xef\xbb\xbf"):
        raw_bytes = raw_bytes[3:]
    warnings: list[str] = []

    def warn(msg: str) -> None:
        if msg not in warnings:
            warnings.append(msg)

    objects: list[tuple[int, dict[str, Any], str]] = []
    unreadable: list[UnreadableLine] = []
    for number, line in enumerate(raw_bytes.split(b"\n"), 1):
        if line.endswith(b"\r"):
            line = line[:-1]
        text = line.decode("utf-8", "surrogateescape")
        if not line.strip():
            continue
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            unreadable.append(UnreadableLine(line=number, text=text, reason="not UTF-8 text"))
            continue
        if len(line) > MAX_CHAT_LINE_BYTES:
            reason = f"longer than the {MAX_CHAT_LINE_BYTES // 2**20} MiB a chat line may hold"
            unreadable.append(UnreadableLine(line=number, text=text, reason=reason))
            continue
        try:
            obj = loads_json(text, path=None, error=ChatFileError, warn=lambda m, n=number: warn(f"line {n}: {m}"))
        except ChatFileError as exc:
            reason = exc.reason
            if isinstance(exc.__cause__, json.JSONDecodeError):
                cause = exc.__cause__
                cut = text.lstrip().startswith("{") and not text.rstrip().endswith("}")
                reason = ("cut off mid-JSON: " if cut else "not valid JSON: ") + f"{cause.msg} (column {cause.colno})"
            unreadable.append(UnreadableLine(line=number, text=text, reason=reason))
            continue
        if not isinstance(obj, dict):
            unreadable.append(UnreadableLine(line=number, text=text, reason=f"a JSON {type(obj).__name__}, not an object"))
            continue
        objects.append((number, obj, text))

    if not objects:
        if unreadable:
            first = unreadable[0]
            raise ChatFileError(path, f"not a SillyTavern JSONL chat: line {first.line} is {first.reason}")
        raise ChatFileError(path, "the chat file is empty")

    header: ChatHeader | None = None
    start = 0
    first_line, first_obj, _ = objects[0]
    if _is_header(first_obj):
        sink: list[str] = []
        try:
            header = ChatHeader.model_validate(first_obj, context={"warnings": sink})
        except ValidationError as exc:
            raise ChatFileError(path, f"line {first_line}: the header is malformed ({_first_error(exc)})") from exc
        for msg in sink:
            warn(f"line {first_line}: {msg}")
        start = 1
    elif unreadable and unreadable[0].line < first_line:
        header = ChatHeader(user_name="User", character_name="", create_date=_st_create_date(), chat_metadata={})
        warn(f"line {unreadable[0].line} (the header) is unreadable; a new header will be written on save")

    messages: list[ChatMessage] = []
    for number, obj, text in objects[start:]:
        if _is_header(obj):
            unreadable.append(UnreadableLine(line=number, text=text, reason="a second header line"))
            continue
        try:
            messages.append(_message_from_st(obj, number, warn))
        except ValidationError as exc:
            unreadable.append(UnreadableLine(line=number, text=text, reason=_first_error(exc)))
    unreadable.sort(key=lambda u: u.line)
    for bad in unreadable:
        warn(f"line {bad.line} is unreadable ({bad.reason}); skipped, and kept in the file on save")
    _assign_ids(messages, warn)
    return ChatFile(Chat(header=header, messages=messages, unreadable=unreadable), path, warnings)


def _assign_ids(messages: list[ChatMessage], warn: Warn) -> None:
    seen: set[str] = set()
    missing: list[ChatMessage] = []
    duplicated = 0
    for message in messages:
        if not message.id or message.id in seen:
            duplicated += bool(message.id)
            missing.append(message)
        else:
            seen.add(message.id)
    if duplicated:
        warn(f"{duplicated} message id(s) were used twice; gave them new ids")
    counter = 0
    for message in missing:
        while str(counter) in seen:
            counter += 1
        message.id = str(counter)
        seen.add(message.id)


def _first_error(exc: ValidationError) -> str:
    first = exc.errors(include_url=False)[0]
    loc = ".".join(str(p) for p in first["loc"] if not str(p).startswith("function-"))
    return f"{loc}: {first['msg']}" if loc else first["msg"]


def chat_to_text(chat: Chat) -> str:
    """SillyTavern JSONL: header (if any), messages, then any unreadable lines as they were."""
    lines = []
    if chat.header is not None:
        lines.append(json.dumps(chat.header.to_dict(), ensure_ascii=False, separators=(",", ":")))
    for message in chat.messages:
        lines.append(json.dumps(_message_to_st(message), ensure_ascii=False, separators=(",", ":")))
    # A lone surrogate in a message (typed in, or pasted) is written as U+FFFD, as loading reads
    # it; only unreadable lines carry surrogate escapes, which stand for their original bytes.
    lines = [clean_surrogates(line) for line in lines]
    lines.extend(bad.text for bad in chat.unreadable)
    return "\n".join(lines) + "\n"


def load_chat(path: str | Path, *, max_bytes: int = MAX_CHAT_BYTES) -> ChatFile:
    """Read a chat file; the file itself is never changed by reading."""
    p, data = read_limited(path, error=ChatFileError, what="chat", limit=max_bytes)
    return chat_from_text(data, path=p)


def save_chat(chat: Chat | ChatFile, path: str | Path) -> Path:
    """Write the chat atomically (beside, fsync, rename)."""
    model = chat.chat if isinstance(chat, ChatFile) else chat
    p = Path(path)
    try:
        write_bytes_atomic(p, chat_to_text(model).encode("utf-8", "surrogateescape"))
    except OSError as exc:
        raise ChatFileError(p, f"cannot write the chat file ({exc.strerror or exc})") from exc
    return p
