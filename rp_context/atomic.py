"""Atomic file writes: write beside the target, fsync, rename; a crash never leaves a half file.

A save killed midway leaves its temp file (`.NAME.PID.XXXX.tmp`) beside the target; the next
save or load of that file removes the temp files of processes that are gone.
"""

from __future__ import annotations

import contextlib
import glob
import os
import tempfile
import time
from pathlib import Path

__all__ = ["clean_leftovers", "write_bytes_atomic", "write_text_atomic"]

_STALE_S = 3600
"""A temp file without a process id (an older rp-context) is left over once it is this old."""


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists but is not ours (PermissionError), or we cannot tell
        return True
    return True


def clean_leftovers(path: str | Path) -> list[Path]:
    """Remove the temp files that interrupted saves of `path` left beside it; returns them."""
    target = Path(path)
    removed: list[Path] = []
    pattern = os.path.join(glob.escape(str(target.parent)), f".{glob.escape(target.name)}.*.tmp")
    for leftover in glob.glob(pattern):
        middle = leftover[len(str(target.parent)) + len(target.name) + 3 : -len(".tmp")]
        pid_text = middle.split(".", 1)[0]
        try:
            stale = not _alive(int(pid_text)) if pid_text.isdigit() and "." in middle else (
                time.time() - os.stat(leftover).st_mtime > _STALE_S)
            if stale:
                os.unlink(leftover)
                removed.append(Path(leftover))
        except OSError:
            continue
    return removed


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Replace `path` with `data` atomically (same directory temp file, fsync, os.replace)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(OSError):  # mkstemp makes 0600; keep the old mode or the usual one
            os.chmod(tmp, target.stat().st_mode & 0o7777 if target.exists() else 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        dfd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    return target


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """Replace `path` with `text` atomically."""
    return write_bytes_atomic(path, text.encode(encoding))
