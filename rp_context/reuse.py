"""Whether what a cache kept from the last turn is still what it was: lists compared by object
identity, in C (an object compared with itself is never read)."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import compress, count
from operator import is_, is_not
from typing import Any

__all__ = ["identical_prefix", "same_objects"]


def identical_prefix(new: Sequence[Any], old: Sequence[Any]) -> int:
    """How many leading items of `new` are the very objects of `old` (one C pass)."""
    if all(map(is_, new, old)):
        return min(len(new), len(old))
    return next(compress(count(), map(is_not, new, old)))


def same_objects(a: Sequence[Any], b: Sequence[Any]) -> bool:
    """Whether `a` and `b` hold the very same objects, in order (the same list, or one C pass)."""
    return a is b or (len(a) == len(b) and all(map(is_, a, b)))
