"""Many chats on a llama.cpp server with few slots: each chat keeps a slot while it is active.

A server started with `--parallel K` has K slots, each with its own KV cache. `SlotPool` gives
every chat the slot it had before (affinity), so the server only evaluates what is new. When a
chat needs a slot and all are taken, the least recently used idle slot is saved to the server's
disk (`/slots/{id}?action=save`, file named for its chat) and this chat's own file, if there is
one, is restored into it. Up to K chats generate at once; more wait for a slot.

Servers without a `--slot-save-path` still get affinity; saving is then off (reported once).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ..errors import BackendError

__all__ = ["SlotPool", "pool_for", "slot_filename"]

_POOLS: dict[str, SlotPool] = {}
_POOLS_LOCK = threading.Lock()


def slot_filename(chat: str) -> str:
    """A file name the server accepts for a chat key (letters, digits, `.`, `_`, `-`)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", chat).strip("._") or "chat"
    return f"{safe[:120]}.slot"


def pool_for(backend: Any) -> SlotPool:
    """The pool of the server `backend` talks to (one per base URL in this process)."""
    with _POOLS_LOCK:
        pool = _POOLS.get(backend.base_url)
        if pool is None:
            pool = SlotPool(backend, backend.total_slots)
            _POOLS[backend.base_url] = pool
        return pool


@dataclass
class _Slot:
    id: int
    owner: str | None = None
    busy: bool = False
    dirty: bool = False
    """Its cache changed since it was last saved for `owner`."""
    used: float = 0.0


class SlotPool:
    """Hands out a llama.cpp server's slots to chats; thread-safe."""

    def __init__(self, backend: Any, n_slots: int, *, save_files: bool = True) -> None:
        self._backend = backend
        self._slots = [_Slot(i) for i in range(max(1, n_slots))]
        self._cond = threading.Condition()
        self.save_files = save_files
        self._tried: set[str] = set()
        """Chats whose file was looked for on the server in this process."""
        self.saves = 0
        self.restores = 0
        self.warning: str | None = None
        """Why slot files are off, if the server refused a save."""

    @property
    def n_slots(self) -> int:
        return len(self._slots)

    def owner_of(self, slot: int) -> str | None:
        return self._slots[slot].owner

    def slot_of(self, chat: str) -> int | None:
        """The slot `chat` holds now, if any."""
        for s in self._slots:
            if s.owner == chat:
                return s.id
        return None

    # -- leasing ---------------------------------------------------------------------------

    @contextmanager
    def lease(self, chat: str, body: dict[str, Any] | None = None) -> Iterator[int]:
        """Hold `chat`'s slot for one request (sets `body["id_slot"]`); yields tokens restored."""
        slot, restored = self._acquire(chat)
        if body is not None:
            body["id_slot"] = slot.id
        try:
            yield restored
        finally:
            with self._cond:
                slot.busy, slot.dirty, slot.used = False, True, time.monotonic()
                self._cond.notify_all()

    def _acquire(self, chat: str) -> tuple[_Slot, int]:
        with self._cond:
            while True:
                slot = self._pick(chat)
                if slot is not None:
                    break
                self._cond.wait()
            slot.busy = True
            evicted = slot.owner if slot.owner != chat else None
            moving_in = slot.owner != chat
            was_dirty = slot.dirty
        restored = 0
        try:
            if evicted is not None and was_dirty:
                self._save(slot.id, evicted)
            if moving_in:
                restored = self._restore(slot.id, chat)
        except BaseException:
            with self._cond:
                slot.busy = False
                self._cond.notify_all()
            raise
        with self._cond:
            if moving_in:
                slot.owner, slot.dirty = chat, False
        return slot, restored

    def _pick(self, chat: str) -> _Slot | None:
        """This chat's own slot; else a free one; else the least recently used idle one."""
        mine = next((s for s in self._slots if s.owner == chat), None)
        if mine is not None:
            return None if mine.busy else mine
        idle = [s for s in self._slots if not s.busy]
        if not idle:
            return None
        free = [s for s in idle if s.owner is None]
        return free[0] if free else min(idle, key=lambda s: s.used)

    # -- files on the server's disk --------------------------------------------------------

    def save(self, chat: str) -> int:
        """Save `chat`'s slot now if it holds one and it changed; tokens saved (0: nothing)."""
        with self._cond:
            slot = next((s for s in self._slots if s.owner == chat), None)
            if slot is None or not slot.dirty:
                return 0
            while slot.busy:
                self._cond.wait()
            if slot.owner != chat:
                return 0
            slot.busy = True
        try:
            return self._save(slot.id, chat)
        finally:
            with self._cond:
                slot.busy = False
                self._cond.notify_all()

    def prefetch(self, chat: str) -> int:
        """Give `chat` a slot now and restore its saved file into it (when a chat is opened)."""
        with self.lease(chat) as restored:
            pass
        with self._cond:
            slot = next((s for s in self._slots if s.owner == chat), None)
            if slot is not None:
                slot.dirty = False  # restored from the file: nothing new to save
        return restored

    def _save(self, slot: int, chat: str) -> int:
        if not self.save_files:
            return 0
        try:
            data = self._backend.slot_action(slot, "save", slot_filename(chat))
        except BackendError as exc:
            self.save_files = False
            self.warning = f"{exc}; chats on this server are not saved to its disk"
            return 0
        with self._cond:
            self._slots[slot].dirty = False
        self.saves += 1
        self._tried.add(chat)
        return int(data.get("n_saved") or 0)

    def _restore(self, slot: int, chat: str) -> int:
        if not self.save_files:
            return 0
        try:
            data = self._backend.slot_action(slot, "restore", slot_filename(chat))
        except BackendError:
            return 0  # no file for this chat yet (or another model's): the server reads the prompt
        finally:
            self._tried.add(chat)
        self.restores += 1
        return int(data.get("n_restored") or 0)
