"""Per-user history: recent interactions (bounded), exclusions, and identity merges.

Pure: the personal agent loads and stores these, the evaluation replays them in memory.
Each entry is ``(item_id, entry type, timestamp_ms)``; the entry type is the event type,
except that a rating below the positive threshold is stored as ``rate_low``, so a ``rate``
entry is always a conversion.

A history also lists the anonymous ids merged into the user at login (``merged``, the newest
:data:`MAX_MERGED_IDS`): their alias keys point to the user, and a ``forget`` of the user
deletes them too (docs/privacy.md).
"""

from __future__ import annotations

from array import array
from bisect import insort
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from pipeline.core.events import Event
from pipeline.core.feedback import CLICK, CONVERSION_TYPES, EXCLUDING_TYPES

# Entry type of a rating below the positive threshold (never a conversion).
LOW_RATING = "rate_low"
CLICK_ENTRIES = frozenset({CLICK})
CONVERSION_ENTRIES = CONVERSION_TYPES | {"rate"}
# Entries of items the user showed they like: every entry but a low rating. An item rated
# low but also clicked or bought still has one: what others bought with it still tells
# (on the dense, default and 1995 logs, leaving out every item with a low rating scored
# lower: 0.4096 against 0.4124, 0.5186 against 0.5200, 0.3600 against 0.3612).
LIKED_ENTRIES = CLICK_ENTRIES | CONVERSION_ENTRIES
# Anonymous ids a history remembers as merged into the user; when a login adds one more, the
# oldest is dropped and the engine deletes its alias, so every alias pointing to a user is
# listed in the user's history (what a forget relies on).
MAX_MERGED_IDS = 100


# Each item's entry times (ascending), clicks and conversions apart: what pairing reads of a
# history (``related.model.co_occurrences``).
EntryTimes = tuple[dict[str, list[int]], dict[str, list[int]]]


def entry_times(entries: Iterable[tuple[str, str, int]]) -> EntryTimes:
    """(clicks, conversions): each item's times among ``entries``, ascending."""
    times: EntryTimes = ({}, {})
    for entry in entries:
        add_entry_time(times, entry)
    return times


def _times_of(times: EntryTimes, entry_type: str) -> dict[str, list[int]] | None:
    if entry_type in CLICK_ENTRIES:
        return times[0]
    if entry_type in CONVERSION_ENTRIES:
        return times[1]
    return None


def add_entry_time(times: EntryTimes, entry: tuple[str, str, int]) -> None:
    """Count ``entry`` in ``times`` (entries of other types are not paired)."""
    item_id, entry_type, timestamp_ms = entry
    times_of = _times_of(times, entry_type)
    if times_of is None:
        return
    found = times_of.get(item_id)
    if found is None:
        times_of[item_id] = [timestamp_ms]
    elif found[-1] <= timestamp_ms:
        found.append(timestamp_ms)
    else:
        insort(found, timestamp_ms)


# The kinds of paired entries (:meth:`UserHistory.paired_entries`).
CLICK_KIND, CONVERSION_KIND = 0, 1


def paired_kind(entry_type: str) -> int | None:
    """An entry's kind in :meth:`UserHistory.paired_entries`, None for entries not paired."""
    if entry_type in CLICK_ENTRIES:
        return CLICK_KIND
    if entry_type in CONVERSION_ENTRIES:
        return CONVERSION_KIND
    return None


def paired_code(number: int, kind: int) -> int:
    """An entry's code in :meth:`UserHistory.paired_entries`: its item's number and its kind
    in one integer (``code >> 1`` and ``code & 1``)."""
    return 2 * number + kind


def entry_order(entry: tuple[str, str, int]) -> tuple[int, str, str]:
    """The order of history entries: time, then item and type for equal times, so a history
    holds its entries in the same order (and trims the same ones) whatever order its events
    arrived in."""
    return entry[2], entry[0], entry[1]


@dataclass(frozen=True, slots=True)
class HistoryLimits:
    """``length`` entries at most; entries older than ``max_age_s`` behind the newest are
    dropped; ``max_excluded`` exclusions at most (the oldest purchase goes first)."""

    length: int
    max_age_s: int
    max_excluded: int


@dataclass
class UserHistory:
    """Recent (item_id, entry type, timestamp_ms) with the newest last, plus exclusions,
    bounded by ``limits`` so a heavy user cannot grow memory without limit."""

    limits: HistoryLimits
    recent: deque[tuple[str, str, int]] = field(default_factory=deque)
    excluded: dict[str, int] = field(default_factory=dict)
    blacklisted: set[str] = field(default_factory=set)
    interactions: int = 0
    # Anonymous ids merged into this user at login, oldest first.
    merged: dict[str, None] = field(default_factory=dict)
    # :meth:`paired_entries` kept in step with ``recent`` as entries come and go (None: built
    # from ``recent`` when next asked, after a late entry, a blacklist or a merge).
    _paired: array | None = field(default=None, repr=False, compare=False)

    def add(self, event: Event, entry_type: str | None = None, number: int = -1) -> None:
        """Record an event. ``entry_type`` overrides the type stored (:data:`LOW_RATING`).
        ``number``: the item's number in the numbering of :meth:`paired_entries` (-1: not
        known; a click or conversion entry then has them built again when next asked,
        other entries need none)."""
        if event.item_id is None:
            return
        if event.event_type == "blacklist":
            self.blacklisted.add(event.item_id)
            self._exclude(event.item_id, event.timestamp_ms)
            self.recent = deque(entry for entry in self.recent if entry[0] != event.item_id)
            self._paired = None
            return
        if event.event_type in EXCLUDING_TYPES:
            self._exclude(event.item_id, event.timestamp_ms)
        entry = (event.item_id, entry_type or event.event_type, event.timestamp_ms)
        recent = self.recent
        key = entry_order(entry)
        # Entries after the new one: none but for a late event.
        after = 0
        if not recent or entry_order(recent[-1]) <= key:
            recent.append(entry)
        else:
            # A late event (topics are not ordered against each other): keep time order,
            # which items_since and the age trim rely on. Late events land near the end.
            position = len(recent)
            while position > 0 and entry_order(recent[position - 1]) > key:
                position -= 1
            recent.insert(position, entry)
            after = len(recent) - 1 - position
        paired, kind = self._paired, paired_kind(entry[1])
        if paired is not None and kind is not None:
            if number < 0:
                self._paired = None
            elif not after:
                paired.extend((paired_code(number, kind), entry[2]))
            else:
                later = sum(paired_kind(recent[-1 - k][1]) is not None for k in range(after))
                at = len(paired) - 2 * later
                paired[at:at] = array("q", (paired_code(number, kind), entry[2]))
        self.interactions += 1
        self._trim(recent[-1][2])

    def _exclude(self, item_id: str, timestamp_ms: int) -> None:
        # The newest exclusion of the item, whichever of its events arrived last.
        self.excluded[item_id] = max(timestamp_ms, self.excluded.get(item_id, timestamp_ms))
        if len(self.excluded) > self.limits.max_excluded:
            # Blacklists are for good; the oldest purchase makes room.
            evictable = [k for k in self.excluded if k not in self.blacklisted]
            if evictable:
                del self.excluded[min(evictable, key=self.excluded.__getitem__)]

    def _trim(self, now_ms: int) -> None:
        recent, paired = self.recent, self._paired
        max_age_ms = self.limits.max_age_s * 1000
        while recent and (len(recent) > self.limits.length or now_ms - recent[0][2] > max_age_ms):
            dropped = recent.popleft()
            if paired is not None and paired_kind(dropped[1]) is not None:
                # The oldest entry, so the first paired one.
                del paired[:2]

    def entry_times(self) -> EntryTimes:
        """(clicks, conversions): each item's entry times, ascending."""
        return entry_times(self.recent)

    def paired_entries(self, number: Callable[[str], int]) -> array:
        """The click and conversion entries as one flat array of (:func:`paired_code`,
        timestamp_ms), in time order: what compiled pairing
        reads (``pipeline.features.related.pairing``). ``number`` numbers items; the array
        is kept in step with the entries while :meth:`add` is given each item's number in
        the same numbering (read-only)."""
        if self._paired is None:
            paired = self._paired = array("q")
            for item_id, entry_type, timestamp_ms in self.recent:
                kind = paired_kind(entry_type)
                if kind is not None:
                    paired.extend((paired_code(number(item_id), kind), timestamp_ms))
        return self._paired

    def items_since(
        self, since_ms: int, types: frozenset[str] | None = None, limit: int | None = None
    ) -> list[str]:
        """Distinct items of recent entries at or after ``since_ms``, newest first; the
        first ``limit`` of them (None: all). With a limit the walk stops once it has them:
        a list wants a user's last few items, whatever the length of their history."""
        seen: dict[str, None] = {}
        if limit is not None and limit <= 0:
            return []
        for item_id, event_type, timestamp_ms in reversed(self.recent):
            if timestamp_ms < since_ms:
                break
            if (types is None or event_type in types) and item_id not in seen:
                seen[item_id] = None
                if len(seen) == limit:
                    break
        return list(seen)

    def clicked_since(self, since_ms: int, limit: int | None = None) -> list[str]:
        """Distinct clicked items at or after ``since_ms``, newest first (the first
        ``limit``)."""
        return self.items_since(since_ms, CLICK_ENTRIES, limit)

    def converted_since(self, since_ms: int) -> list[str]:
        """Distinct converted items at or after ``since_ms``, newest first."""
        return self.items_since(since_ms, CONVERSION_ENTRIES)

    def seen_items(self) -> set[str]:
        return set(map(itemgetter(0), self.recent)).union(self.excluded)

    def has_seen(self, item_id: str) -> bool:
        """Whether ``item_id`` is one of :meth:`seen_items`, without building the set."""
        if item_id in self.excluded:
            return True
        # A C loop (``in`` over a map), not a generator: a case is an item not seen, so the
        # whole history is looked through.
        return item_id in map(itemgetter(0), self.recent)

    def merge_from(self, other: UserHistory) -> None:
        """Fold an anonymous history into this one (login), keeping time order. The ids
        merged into ``other`` are not carried over: :meth:`add_merged` them."""
        merged = sorted([*other.recent, *self.recent], key=entry_order)
        self.recent = deque(merged)
        self._paired = None
        for item_id, timestamp_ms in other.excluded.items():
            self._exclude(item_id, timestamp_ms)
        self.blacklisted |= other.blacklisted
        self.interactions += other.interactions
        if self.recent:
            self._trim(self.recent[-1][2])

    def add_merged(self, anonymous_ids: list[str]) -> list[str]:
        """Remember ids merged into this user (newest last); returns the ids dropped to stay
        within :data:`MAX_MERGED_IDS` (oldest first)."""
        for anonymous_id in anonymous_ids:
            self.merged.pop(anonymous_id, None)
            self.merged[anonymous_id] = None
        excess = len(self.merged) - MAX_MERGED_IDS
        if excess <= 0:
            return []
        dropped = list(self.merged)[:excess]
        for anonymous_id in dropped:
            del self.merged[anonymous_id]
        return dropped

    # --- plain-JSON form (stored in Redis; never a pickle) -----------------------------------
    def to_state(self) -> dict[str, Any]:
        return {
            "recent": [list(entry) for entry in self.recent],
            "excluded": self.excluded,
            "blacklisted": sorted(self.blacklisted),
            "interactions": self.interactions,
            "merged": list(self.merged),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], limits: HistoryLimits) -> UserHistory:
        history = cls(limits)
        # In time order whatever order the stored entries are in (Redis is a public contract
        # that others may write): pairing and the trims rely on it. A sorted list (what
        # this class stores) is checked in one pass.
        entries = [(str(i), str(t), int(ts)) for i, t, ts in state.get("recent", [])]
        history.recent = deque(sorted(entries, key=entry_order))
        history.excluded = {str(k): int(v) for k, v in state.get("excluded", {}).items()}
        history.blacklisted = set(state.get("blacklisted", []))
        history.interactions = int(state.get("interactions", 0))
        history.merged = dict.fromkeys(str(anonymous) for anonymous in state.get("merged", []))
        return history
