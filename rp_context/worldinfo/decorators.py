"""V3 lorebook decorators: `@@name value` lines at the start of an entry's content.

Follows SillyTavern's reader (decorators only while the content starts with `@@`; a `@@@name`
line is a fallback, tried only when the decorator above it was unknown or invalid) with the
V3 spec's placement decorators on top. Decorators we do not act on count as unknown, so their
fallbacks apply.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .._types import ROLES

__all__ = ["Decorators", "parse_decorators", "DECORATOR_POSITIONS"]

DECORATOR_POSITIONS = {
    "before_desc": "before",
    "after_desc": "after",
    "personality": "after",
    "scenario": "after",
    "before": "before",
    "after": "after",
    "before_char": "before",
    "after_char": "after",
    "an_top": "an_top",
    "an_bottom": "an_bottom",
    "at_depth": "at_depth",
    "em_top": "em_top",
    "em_bottom": "em_bottom",
}
"""`@@position` values: the V3 spec's (`before_desc`, `after_desc`, `personality`, `scenario`) and ours."""

_ROLES = ROLES


@dataclass
class Decorators:
    """The decorators an entry carries; None/empty means not given."""

    activate: bool = False
    dont_activate: bool = False
    depth: int | None = None
    role: str | None = None
    position: str | None = None
    scan_depth: int | None = None
    additional_keys: list[str] = field(default_factory=list)
    exclude_keys: list[str] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)

    def apply(self, name: str, value: str) -> bool:
        """Record one decorator; False when unknown or its value is invalid (so a fallback applies)."""
        if name in ("activate", "dont_activate"):
            if name not in self.seen:
                setattr(self, name, True)
        elif name in ("depth", "scan_depth"):
            try:
                number = int(value.strip())
            except ValueError:
                return False
            if name in self.seen:
                return True
            if name == "scan_depth" and number < 0:
                return False
            setattr(self, name, number)
        elif name == "role":
            role = value.strip().lower()
            if role not in _ROLES:
                return False
            if name not in self.seen:
                self.role = role
        elif name == "position":
            position = DECORATOR_POSITIONS.get(value.strip().lower())
            if position is None:
                return False
            if name not in self.seen:
                self.position = position
        elif name in ("additional_keys", "exclude_keys"):
            keys = [k.strip() for k in value.split(",") if k.strip()]
            if not keys:
                return False
            if name == "additional_keys" or name not in self.seen:  # additional_keys repeats
                getattr(self, name).extend(keys)
        else:
            return False
        self.seen.add(name)
        return True


def parse_decorators(content: str) -> tuple[Decorators, str]:
    """The decorators at the start of `content`, and the content without them."""
    found = Decorators()
    if not content.startswith("@@"):
        return found, content
    lines = content.split("\n")
    fallback = False
    rest: list[str] = []
    for i, raw in enumerate(lines):
        line = raw.rstrip("\r")
        if not line.startswith("@@"):
            rest = lines[i:]
            break
        if line.startswith("@@@"):
            if not fallback:
                continue
            body = line[3:]
        else:
            body = line[2:]
        name, _, value = body.strip().partition(" ")
        fallback = not found.apply(name.strip().lower(), value)
    return found, "\n".join(rest).lstrip("\r\n")
