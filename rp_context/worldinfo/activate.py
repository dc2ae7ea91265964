"""The world-info activation loop: SillyTavern 1.12.6's `checkWorldInfo`, deterministic and explained.

Randomness (probability rolls, inclusion-group draws) comes from a hash of the caller's seed,
so the same chat state always fires the same entries; every entry gets a decision saying why.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..cards.model import Lorebook
from ..macros import MacroContext, expand_macros
from ..tokens import CountCache, TokenCounter
from .entries import LOGIC_NAMES, PreparedEntry, prepare_entries
from .matching import REGEX_TIMEOUT_S, KeyMatcher, ScanBuffer, ScanMessage
from .result import DecisionStatus, FiredEntry, LoreDecision, WorldInfoResult
from .settings import WorldInfoSettings
from .timed import TimedEffects

__all__ = ["activate_world_info"]

_NONE, _INITIAL, _RECURSION, _MIN_ACTIVATIONS = 0, 1, 2, 3


def _unit(*parts: object) -> float:
    """A number in [0, 1) fixed by `parts`: the deterministic stand-in for Math.random()."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass
class _Decision:
    status: DecisionStatus
    reason: str
    matched_key: str | None = None
    tokens: int = 0
    scan_pass: int = 0


@dataclass
class _Fired:
    entry: PreparedEntry
    content: str
    tokens: int
    outside: bool


class _Scan:
    """State of one activation run."""

    def __init__(
        self,
        entries: list[PreparedEntry],
        chat_length: int,
        buffer: ScanBuffer,
        settings: WorldInfoSettings,
        counter: TokenCounter,
        budget: int,
        seed: str,
        macro_ctx: MacroContext | None,
        timed: TimedEffects,
    ) -> None:
        self.entries = entries
        self.chat_length = chat_length
        self.buffer = buffer
        self.settings = settings
        self.counter = counter
        held = getattr(counter, "counts", None)
        self.count = held.count if isinstance(held, CountCache) else counter.count
        """Tokens of a text: the counter's own table of counts by text when it keeps one."""
        self.budget = budget
        self.seed = seed
        self.macro_ctx = macro_ctx
        self.timed = timed
        self.decisions: dict[str, _Decision] = {}
        self.activated: dict[str, _Fired] = {}
        self.failed_probability: set[str] = set()
        self.used = 0
        self.outside = 0
        self.overflowed = False
        self.passes = 0
        self._keys_cache: dict[str, str] = {}
        self._matched_key: str | None = None
        self.timed_out: set[str] = set()
        """Regex keys that ran past REGEX_TIMEOUT_S this run: they count as not matching."""

    # ------------------------------------------------------------------------------- helpers

    def decide(self, entry: PreparedEntry, status: DecisionStatus, reason: str, **extra: Any) -> None:
        if self.timed_out:
            slow = [k for k in (*entry.keys, *entry.secondary) if self.key_text(k) in self.timed_out]
            if slow:
                reason = (f"{reason}; regex key {self.key_text(slow[0])!r} gave up after "
                          f"{REGEX_TIMEOUT_S} s (pathological) and counts as not matching")
        self.decisions[entry.key] = _Decision(status, reason, scan_pass=self.passes, **extra)

    def macro(self, text: str) -> str:
        if self.macro_ctx is None or not text:
            return text
        return expand_macros(text, self.macro_ctx)

    def key_text(self, key: str) -> str:
        if key not in self._keys_cache:
            self._keys_cache[key] = self.macro(key).strip()
        return self._keys_cache[key]

    def matcher(self, entry: PreparedEntry) -> KeyMatcher:
        return KeyMatcher(entry.case_sensitive, entry.whole_words, entry.use_regex, self.timed_out)

    def find(self, keys: list[str], haystack: str, matcher: KeyMatcher) -> str | None:
        for key in keys:
            text = self.key_text(key)
            if text and matcher.matches(haystack, text):
                return text
        return None

    def score(self, entry: PreparedEntry, state: int) -> int:
        """SillyTavern's group score: primary matches, plus secondary ones under positive logic."""
        if not entry.keys:
            return 0
        haystack = ScanBuffer.join(self.segments(entry, state))
        matcher = self.matcher(entry)
        primary = sum(1 for k in entry.keys if (t := self.key_text(k)) and matcher.matches(haystack, t))
        secondary = sum(1 for k in entry.secondary if (t := self.key_text(k)) and matcher.matches(haystack, t))
        if entry.secondary:
            if entry.logic == 0:
                return primary + secondary
            if entry.logic == 3 and secondary == len(entry.secondary):
                return primary + secondary
        return primary

    def segments(self, entry: PreparedEntry, state: int) -> list[tuple[str, str]]:
        return self.buffer.segments(entry.scan_depth, with_recursion=state != _MIN_ACTIVATIONS)

    # --------------------------------------------------------------------------- one entry

    def check(self, entry: PreparedEntry, state: int, level: int) -> str | None:
        """Why `entry` activates in this pass (a reason), or None (its decision is recorded)."""
        sticky = self.timed.is_active("sticky", entry)
        if entry.delay and self.chat_length < entry.delay:
            self.decide(entry, "delayed", f"delay: needs {entry.delay} messages in the chat, has {self.chat_length}")
            return None
        if self.timed.is_active("cooldown", entry) and not sticky:
            self.decide(entry, "cooldown", f"cooldown: {self.timed.describe('cooldown', entry)}")
            return None
        if entry.delay_until_recursion and not sticky:
            if state != _RECURSION:
                self.decide(entry, "delayed", f"delayed until recursion (level {entry.delay_until_recursion})")
                return None
            if entry.delay_until_recursion > level:
                self.decide(
                    entry, "delayed",
                    f"delayed until recursion level {entry.delay_until_recursion} (reached {level})",
                )
                return None
        if state == _RECURSION and self.settings.recursive and entry.exclude_recursion and not sticky:
            if entry.key not in self.decisions:
                self.decide(entry, "no_match", "excluded from recursion and no key matched the chat")
            return None
        if entry.activate:
            return "@@activate decorator"
        if entry.dont_activate:
            self.decide(entry, "disabled", "@@dont_activate decorator")
            return None
        if entry.constant:
            return "constant"
        if sticky:
            return f"sticky: {self.timed.describe('sticky', entry)}"
        if not entry.keys:
            self.decide(entry, "no_match", "no keys")
            return None
        segments = self.segments(entry, state)
        if not segments:
            self.decide(entry, "no_match", "scan depth 0: nothing is scanned")
            return None
        haystack = ScanBuffer.join(segments)
        matcher = self.matcher(entry)
        primary = self.find(entry.keys, haystack, matcher)
        if primary is None:
            depth = self.buffer.depth if entry.scan_depth is None else entry.scan_depth
            self.decide(entry, "no_match", f"no key matched (scan depth {depth})")
            return None
        where = ScanBuffer.locate(segments, primary, matcher)
        reason = f"key {primary!r} matched in {where}"
        if entry.selective and entry.secondary:
            ok, why = self.secondary(entry, haystack, matcher)
            if not ok:
                self.decide(entry, "secondary_failed", f"{reason}, but {why}", matched_key=primary)
                return None
            reason = f"{reason}; {why}"
        if entry.additional_keys:
            extra = self.find(entry.additional_keys, haystack, matcher)
            if extra is None:
                self.decide(
                    entry, "secondary_failed", f"{reason}, but none of @@additional_keys matched",
                    matched_key=primary,
                )
                return None
        if entry.exclude_keys:
            excluded = self.find(entry.exclude_keys, haystack, matcher)
            if excluded is not None:
                self.decide(
                    entry, "secondary_failed", f"{reason}, but @@exclude_keys {excluded!r} matched",
                    matched_key=primary,
                )
                return None
        self._matched_key = primary
        return reason

    def secondary(self, entry: PreparedEntry, haystack: str, matcher: KeyMatcher) -> tuple[bool, str]:
        logic = entry.logic
        name = LOGIC_NAMES.get(logic, f"logic {logic}")
        found: list[str] = []
        missing: list[str] = []
        for key in entry.secondary:
            text = self.key_text(key)
            hit = bool(text) and matcher.matches(haystack, text)
            (found if hit else missing).append(text or key)
            if logic == 0 and hit:
                return True, f"{name}: secondary {text!r} matched"
            if logic == 1 and not hit:
                return True, f"{name}: secondary {text or key!r} absent"
        if logic == 2 and not found:
            return True, f"{name}: no secondary key matched"
        if logic == 3 and not missing:
            return True, f"{name}: all secondary keys matched"
        if logic == 0:
            return False, f"{name}: no secondary key matched"
        if logic == 1:
            return False, f"{name}: every secondary key matched"
        if logic == 2:
            return False, f"{name}: secondary {found[0]!r} matched"
        if logic == 3:
            return False, f"{name}: secondary {missing[0]!r} absent"
        return False, f"unknown selective logic {logic}"

    # -------------------------------------------------------------------------- groups

    def filter_groups(self, new: list[tuple[PreparedEntry, str, str | None]], state: int) -> None:
        """SillyTavern's inclusion groups: at most one member of a group fires per generation."""
        grouped: dict[str, list[PreparedEntry]] = {}
        for entry, _, _ in new:
            for group in entry.groups:
                grouped.setdefault(group, []).append(entry)
        if not grouped:
            return
        removed: set[str] = set()

        def lose(entry: PreparedEntry, reason: str, *, again: bool = False) -> None:
            if entry.key in removed:
                return
            removed.add(entry.key)
            earlier = self.decisions.get(entry.key)
            if again and earlier is not None and earlier.status == "group_lost":
                return  # lost this group in an earlier pass: keep that explanation
            self.decide(entry, "group_lost", reason)

        has_sticky: dict[str, bool] = {}
        for group, members in grouped.items():
            sticky = [e for e in members if self.timed.is_active("sticky", e)]
            has_sticky[group] = bool(sticky)
            for e in members:
                if sticky and e not in sticky:
                    lose(e, f"group {group!r}: sticky member {sticky[0].comment or sticky[0].key!r} holds it")
        for group, members in grouped.items():
            scored = self.settings.use_group_scoring or any(e.use_group_scoring for e in members)
            if not scored or has_sticky[group]:
                continue
            scores = [self.score(e, state) for e in members]
            best = max(scores)
            keep = []
            for e, s in zip(members, scores, strict=True):
                uses = e.use_group_scoring if e.use_group_scoring is not None else self.settings.use_group_scoring
                if uses and s < best:
                    lose(e, f"group {group!r}: scored {s} key matches, the best had {best}")
                else:
                    keep.append(e)
            grouped[group] = keep
        active_groups = {g for fired in self.activated.values() for g in fired.entry.groups}
        for group, members in grouped.items():
            if has_sticky[group]:
                continue
            if group in active_groups:
                for e in members:
                    lose(e, f"group {group!r} already has an active entry", again=True)
                continue
            if len(members) <= 1:
                continue
            overrides = sorted((e for e in members if e.group_override), key=lambda e: -e.order)
            if overrides:
                winner = overrides[0]
                why = f"group {group!r}: {winner.comment or winner.key!r} has the group override"
            else:
                total = sum(e.group_weight for e in members)
                roll = _unit(self.seed, "group", group, self.passes) * total
                winner = None
                running = 0.0
                for e in members:
                    running += e.group_weight
                    if roll <= running:
                        winner = e
                        break
                if winner is None:
                    for e in members:
                        lose(e, f"group {group!r}: the weighted draw found no winner")
                    continue
                why = f"group {group!r}: lost the weighted draw to {winner.comment or winner.key!r}"
            for e in members:
                if e is not winner:
                    lose(e, why)
        new[:] = [item for item in new if item[0].key not in removed]

    # ---------------------------------------------------------------------------- budget

    def admit(self, new: list[tuple[PreparedEntry, str, str | None]]) -> list[PreparedEntry]:
        """Probability and budget, in order; returns the entries that fired in this pass."""
        fired: list[PreparedEntry] = []
        for entry, reason, matched in new:
            if self.overflowed and not entry.ignore_budget:
                self.decide(
                    entry, "budget", f"{reason}, but the budget ({self.budget} tokens) was already full",
                    matched_key=matched,
                )
                continue
            if (
                entry.use_probability
                and entry.probability != 100
                and not self.timed.is_active("sticky", entry)
            ):
                roll = _unit(self.seed, "probability", entry.key) * 100
                if not roll <= entry.probability:
                    self.failed_probability.add(entry.key)
                    self.decide(
                        entry, "probability",
                        f"{reason}, but probability roll {roll:.0f} > {entry.probability:g}",
                        matched_key=matched,
                    )
                    continue
                reason = f"{reason}; probability roll {roll:.0f} <= {entry.probability:g}"
            content = self.macro(entry.content)
            tokens = self.count(content + "\n") if content else 0
            if not entry.ignore_budget and self.used + tokens >= self.budget:
                self.overflowed = True
                self.decide(
                    entry, "budget", f"{reason}, but budget: {self.used + tokens}/{self.budget} tokens",
                    matched_key=matched, tokens=tokens,
                )
                continue
            if entry.ignore_budget:
                self.outside += tokens
                reason = f"{reason}; outside the budget"
            else:
                self.used += tokens
            self.activated[entry.key] = _Fired(entry, content, tokens, entry.ignore_budget)
            if content:
                self.decide(entry, "fired", reason, matched_key=matched, tokens=tokens)
            else:
                self.decide(entry, "empty", f"{reason}, but its content is empty", matched_key=matched)
            fired.append(entry)
        return fired

    # ------------------------------------------------------------------------------ loop

    def run(self) -> None:
        settings = self.settings
        for entry in self.entries:
            if not entry.enabled:
                self.decide(entry, "disabled", entry.disabled_reason or "disabled")
            elif entry.position is None:
                self.decide(entry, "disabled", f"position {entry.raw_position!r} is not supported")
        levels = sorted({e.delay_until_recursion for e in self.entries if e.delay_until_recursion})
        level = levels.pop(0) if levels else 0
        state = _INITIAL
        while state:
            if settings.max_recursion_steps and settings.max_recursion_steps <= self.passes:
                break
            self.passes += 1
            new: list[tuple[PreparedEntry, str, str | None]] = []
            for entry in self.entries:
                if entry.key in self.activated or entry.key in self.failed_probability:
                    continue
                if not entry.enabled or entry.position is None:
                    continue
                self._matched_key = None
                reason = self.check(entry, state, level)
                if reason is not None:
                    new.append((entry, reason, self._matched_key))
            new.sort(key=lambda item: (not self.timed.is_active("sticky", item[0]), item[0].index))
            self.filter_groups(new, state)
            fired = self.admit(new)
            recursable = [e for e in fired if not e.prevent_recursion]
            next_state = _NONE
            if settings.recursive and not self.overflowed and recursable:
                next_state = _RECURSION
            if settings.recursive and not self.overflowed and state == _MIN_ACTIVATIONS and self.buffer.recursion:
                next_state = _RECURSION
            if (
                not next_state
                and not self.overflowed
                and settings.min_activations > 0
                and len(self.activated) < settings.min_activations
            ):
                depth = self.buffer.depth
                over = (
                    settings.min_activations_depth_max > 0 and depth > settings.min_activations_depth_max
                ) or depth > self.chat_length
                if not over:
                    next_state = _MIN_ACTIVATIONS
                    self.buffer.skew += 1
            if not next_state and levels:
                next_state = _RECURSION
                level = levels.pop(0)
            state = next_state
            if state:
                text = "\n".join(self.activated[e.key].content for e in recursable)
                if text:
                    self.buffer.recursion.append(text)
        for entry in self.entries:
            if entry.key not in self.decisions:
                self.decide(entry, "no_match", "never scanned (recursion step limit)")


def activate_world_info(
    books: Sequence[Lorebook],
    chat: Sequence[ScanMessage],
    *,
    settings: WorldInfoSettings | None = None,
    counter: TokenCounter,
    max_context_tokens: int,
    seed: str,
    macro_ctx: MacroContext | None = None,
    extra_scan_text: Sequence[str] = (),
    timed_effects: Mapping[str, Any] | None = None,
) -> WorldInfoResult:
    """Decide which lorebook entries fire for this chat state, and where they go.

    `chat` is oldest first (anything with `name` and `text`); the newest `scan_depth` messages
    are scanned, then `extra_scan_text` (the author's note or depth prompts, when they may be
    scanned). `seed` fixes the probability rolls and group draws: pass something that only
    changes with the chat state (chat id + message count). `timed_effects` is the chat's stored
    sticky/cooldown state (`chat_metadata.timedWorldInfo`); the new state is in the result.
    """
    settings = settings or WorldInfoSettings()
    entries = prepare_entries(books, settings)
    buffer = ScanBuffer.from_chat(
        chat, depth=settings.scan_depth, include_names=settings.include_names, injections=extra_scan_text
    )
    timed = TimedEffects(timed_effects, entries, len(chat))
    scan = _Scan(
        entries, len(chat), buffer, settings, counter, settings.budget_tokens(max_context_tokens),
        seed, macro_ctx, timed,
    )
    scan.run()
    return _build(scan, timed)


def _build(scan: _Scan, timed: TimedEffects) -> WorldInfoResult:
    """The frozen result: fired entries in their buckets, and every entry's decision."""
    buckets: dict[str, list[FiredEntry]] = {
        p: [] for p in ("before", "after", "an_top", "an_bottom", "em_top", "em_bottom", "at_depth")}
    # SillyTavern sorts the activated entries by order descending (stable, activation order)
    # and unshifts each into its bucket: ascending order, ties in reverse activation order.
    ranked = sorted(scan.activated.values(), key=lambda f: -f.entry.order)
    for fired in reversed(ranked):
        e = fired.entry
        if not fired.content or e.position is None:
            continue
        buckets[e.position].append(
            FiredEntry(
                key=e.key, uid=e.uid, book=e.book, comment=e.comment, content=fired.content,
                position=e.position, depth=e.depth if e.position == "at_depth" else None,
                role=e.role, order=e.order, tokens=fired.tokens, outside_budget=fired.outside,
                unconditional=bool(e.constant or e.activate),
            )
        )
    decisions = [_decision(e, scan.decisions[e.key]) for e in scan.entries]
    return WorldInfoResult(
        before=buckets["before"], after=buckets["after"], an_top=buckets["an_top"],
        an_bottom=buckets["an_bottom"], examples_top=buckets["em_top"],
        examples_bottom=buckets["em_bottom"], at_depth=buckets["at_depth"], decisions=decisions,
        budget_tokens=scan.budget,
        used_tokens=scan.used,
        outside_budget_tokens=scan.outside,
        overflowed=scan.overflowed,
        passes=scan.passes,
        timed_effects=timed.after([f.entry for f in scan.activated.values()]),
    )


def _decision(e: PreparedEntry, d: _Decision) -> LoreDecision:
    return LoreDecision(
        key=e.key, uid=e.uid, book=e.book, comment=e.comment, status=d.status,
        reason=d.reason, matched_key=d.matched_key, tokens=d.tokens, scan_pass=d.scan_pass,
    )
