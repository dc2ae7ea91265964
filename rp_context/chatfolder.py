"""Chat folders: one folder of SillyTavern JSONL chats per character or group, as SillyTavern
keeps them. Listing (name, date, message count, last line), the latest chat, new file names,
renaming, deleting, branching a new chat from any message, and the chat's author's note.

Listing reads only what it shows: the lines are counted and the last message parsed, so a
folder of long chats lists quickly. Nothing here imports a frontend.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .assembly import AuthorNote
from .cards import load_card, load_roster
from .chat import Chat, ChatHeader, st_timestamp
from .errors import ChatFileError
from .paths import user_data_dir

__all__ = [
    "ChatInfo",
    "PARENT_KEY",
    "author_note_of",
    "branch_chat",
    "cast_chat_name",
    "cast_chat_path",
    "chat_folder",
    "chats_root",
    "chat_info",
    "delete_chat",
    "folder_name",
    "latest_chat",
    "list_chats",
    "new_chat_path",
    "rename_chat",
    "set_author_note",
]

PARENT_KEY = "main_chat"
"""Chat-metadata key SillyTavern writes in a branch: the name of the chat it branched from."""
_ROLES = ("system", "user", "assistant")
_MES = re.compile(rb'"mes"\s*:')
_BAD_CHARS = re.compile(r'[\\/:*?"<>|\x00-\x1f]+')


def folder_name(name: str) -> str:
    """A file-system-safe folder or file name for a character, group or chat name."""
    cleaned = _BAD_CHARS.sub("_", name).strip(" .")
    # a file name holds 255 bytes: a 300-character card name is cut (room left for the date)
    cleaned = cleaned.encode("utf-8")[:120].decode("utf-8", "ignore").strip(" .")
    return cleaned or "chat"


def chats_root() -> Path:
    """Where the app (and `generate --chat latest`) keeps chats: `$RP_CONTEXT_HOME/chats`."""
    return user_data_dir() / "chats"


def cast_chat_name(cards: Sequence[str | Path], roster: str | Path | None = None) -> str:
    """The name a cast's chats are filed under: the roster's name, else the cards' names
    (a card without a name by its file name). Raises the loader's error for a bad file."""
    if roster:
        return load_roster(roster).roster.name
    return ", ".join(load_card(c).card.data.name or Path(c).stem for c in cards)


def cast_chat_path(cards: Sequence[str | Path], roster: str | Path | None = None, *,
                   latest: bool = True, root: Path | None = None) -> Path:
    """The cast's chat file in its folder under `root` (default `chats_root()`): its latest chat
    when `latest` and there is one, else a new file name."""
    name = cast_chat_name(cards, roster)
    folder = chat_folder(root or chats_root(), name)
    return (latest_chat(folder) if latest else None) or new_chat_path(folder, name)


def chat_folder(root: Path, cast_name: str) -> Path:
    """The folder holding the chats of a character or group under `root`."""
    return root / folder_name(cast_name)


def new_chat_path(folder: Path, stem: str, when: _dt.datetime | None = None) -> Path:
    """A free file name `<stem> - <date@time>.jsonl` in `folder`, as SillyTavern names chats."""
    t = when or _dt.datetime.now()
    base = f"{folder_name(stem)} - {t:%Y-%m-%d@%Hh%Mm%Ss}"
    path = folder / f"{base}.jsonl"
    n = 2
    while path.exists():
        path = folder / f"{base} ({n}).jsonl"
        n += 1
    return path


def latest_chat(folder: Path) -> Path | None:
    """The most recently changed chat in `folder`, if any."""
    files = _chat_files(folder)
    return max(files, key=lambda p: p.stat().st_mtime) if files else None


def _chat_files(folder: Path) -> list[Path]:
    return [p for p in folder.glob("*.jsonl") if p.is_file()] if folder.is_dir() else []


@dataclass(frozen=True)
class ChatInfo:
    """What a chat browser shows about one chat file."""

    path: Path
    name: str
    """The file name without `.jsonl` (SillyTavern's chat name)."""
    modified: _dt.datetime
    messages: int
    last_speaker: str
    last_line: str
    """The last message's text on one line (empty for an empty chat)."""
    parent: str | None = None
    """The chat this one was branched from (SillyTavern's `main_chat`), if any."""


def chat_info(path: Path) -> ChatInfo:
    """Read what the browser shows about `path`; ChatFileError when it cannot be read at all."""
    try:
        data = path.read_bytes()
        modified = _dt.datetime.fromtimestamp(path.stat().st_mtime)
    except OSError as exc:
        raise ChatFileError(path, f"cannot read the chat ({exc.strerror or exc})") from exc
    lines = [ln for ln in data.split(b"\n") if ln.strip()]
    parent: str | None = None
    count = sum(1 for ln in lines if _MES.search(ln))  # message lines, without parsing each one
    if lines:
        head = _json_object(lines[0])
        if head is not None and "mes" not in head:
            meta = head.get("chat_metadata")
            if isinstance(meta, dict) and isinstance(meta.get(PARENT_KEY), str):
                parent = meta[PARENT_KEY]
    speaker, last = "", ""
    for raw in reversed(lines):
        obj = _json_object(raw)
        if obj is not None and "mes" in obj:
            speaker, last = str(obj.get("name") or ""), " ".join(str(obj.get("mes") or "").split())
            break
    return ChatInfo(path, path.stem, modified, count, speaker, last, parent)


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        obj = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return obj if isinstance(obj, dict) else None


def list_chats(folder: Path) -> list[ChatInfo]:
    """The chats in `folder`, newest first; files that cannot be read are left out."""
    out: list[ChatInfo] = []
    for p in _chat_files(folder):
        try:
            out.append(chat_info(p))
        except ChatFileError:
            continue
    return sorted(out, key=lambda c: c.modified, reverse=True)


def rename_chat(path: Path, new_name: str) -> Path:
    """Give a chat file a new name in the same folder; never over another file."""
    name = new_name.strip()
    if name.lower().endswith(".jsonl"):
        name = name[:-6]
    if not name or folder_name(name) != name:
        raise ChatFileError(path, f"{new_name!r} cannot be a chat name (no / \\ : * ? \" < > |)")
    target = path.with_name(f"{name}.jsonl")
    if target == path:
        return path
    if target.exists():
        raise ChatFileError(target, "a chat with this name exists already")
    try:
        path.rename(target)
    except OSError as exc:
        raise ChatFileError(path, f"cannot rename the chat ({exc.strerror or exc})") from exc
    return target


def delete_chat(path: Path) -> None:
    """Remove a chat file (the caller asks the user first)."""
    try:
        path.unlink()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ChatFileError(path, f"cannot delete the chat ({exc.strerror or exc})") from exc


def branch_chat(chat: Chat, message_id: str, parent: str) -> Chat:
    """A new chat holding the messages up to and including `message_id`, naming `parent` (the
    chat it came from) in its metadata as SillyTavern's branches do. The original is unchanged."""
    ids = [m.id for m in chat.messages]
    if message_id not in ids:
        raise ChatFileError(None, f"no message with id {message_id!r} to branch from")
    cut = ids.index(message_id) + 1
    messages = [m.model_copy(deep=True) for m in chat.messages[:cut]]
    if chat.header is not None:
        header = chat.header.model_copy(deep=True)
        header.create_date = st_timestamp()
    else:
        header = ChatHeader(create_date=st_timestamp())
    header.chat_metadata[PARENT_KEY] = parent
    return Chat(header=header, messages=messages)


def author_note_of(chat: Chat) -> AuthorNote:
    """The chat's author's note from SillyTavern's chat metadata (`note_prompt`, `note_depth`,
    `note_interval`, `note_role`); the defaults when the chat has none or a value is bad."""
    meta = chat.header.chat_metadata if chat.header is not None else {}
    note = AuthorNote()
    values: dict[str, Any] = {}
    if isinstance(meta.get("note_prompt"), str):
        values["text"] = meta["note_prompt"]
    for key, field_name in (("note_depth", "depth"), ("note_interval", "interval")):
        v = meta.get(key)
        if isinstance(v, (int, float, str)) and str(v).strip().lstrip("-").isdigit():
            values[field_name] = int(v)
    role = meta.get("note_role")
    if isinstance(role, int) and 0 <= role < len(_ROLES):
        values["role"] = _ROLES[role]
    try:
        return AuthorNote.model_validate({**note.model_dump(), **values})
    except ValueError:
        return AuthorNote(text=values.get("text", ""))


def set_author_note(chat: Chat, note: AuthorNote) -> None:
    """Store the author's note in the chat's metadata, under SillyTavern's keys."""
    if chat.header is None:
        chat.header = ChatHeader(create_date=st_timestamp())
    meta = chat.header.chat_metadata
    meta["note_prompt"] = note.text
    meta["note_depth"] = note.depth
    meta["note_interval"] = note.interval
    meta["note_role"] = _ROLES.index(note.role)
