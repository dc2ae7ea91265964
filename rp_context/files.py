"""Reading user files with a size limit, mapping every failure to a typed error naming the file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .atomic import clean_leftovers
from .errors import InputFileError

__all__ = ["read_limited", "decode_text"]

MIB = 1024 * 1024


def read_limited(
    path: str | Path,
    *,
    error: type[InputFileError],
    what: str,
    limit: int,
    too_large: Callable[[int], str] | None = None,
) -> tuple[Path, bytes]:
    """The bytes of `path`, refusing directories, missing files and files over `limit` bytes."""
    p = Path(path)
    try:
        if p.is_dir():
            raise error(p, f"is a directory, not a {what} file")
        size = p.stat().st_size
        if size > limit:
            raise error(p, too_large(size) if too_large else f"the {what} file is larger than {limit // MIB} MiB")
        data = p.read_bytes()
        clean_leftovers(p)  # temp files of a save of this file that was killed midway
    except FileNotFoundError as exc:
        raise error(p, f"{what} file not found") from exc
    except IsADirectoryError as exc:
        raise error(p, f"is a directory, not a {what} file") from exc
    except OSError as exc:
        raise error(p, f"cannot read the {what} file ({exc.strerror or exc})") from exc
    return p, data


def decode_text(
    p: Path | None,
    data: bytes,
    *,
    error: type[InputFileError],
    what: str,
    warn: Callable[[str], None] | None = None,
) -> str:
    """The one text-decoding policy: UTF-8, a byte-order mark dropped.

    Binary data (a NUL byte) is always refused. Other non-UTF-8 bytes are refused too, unless
    the caller reads leniently (`warn` given, as for cards): then the text is read as
    Windows-1252, the usual encoding of old cards, with a warning.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if b"\0" in data:
            raise error(p, f"the {what} is binary data, not text") from None
        if warn is None:
            raise error(p, f"the {what} file is not UTF-8 text") from exc
        warn(f"the {what} is not UTF-8; read it as Windows-1252")
        return data.decode("cp1252", errors="replace")
