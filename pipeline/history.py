"""Per-user history: recent interactions (bounded), exclusions, and identity merges.

Pure: the personal agent loads and stores these, the evaluation replays them in memory.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from pipeline.events import CONVERSION_TYPES, Event

# Event types whose items are never recommended to that user again.
EXCLUDING_TYPES = frozenset({"buy", "consume", "blacklist"})


@dataclass
class UserHistory:
    """Recent (item_id, event_type, timestamp_ms) with the newest last, plus exclusions.

    ``recent`` holds at most ``max_len`` entries; entries older than ``max_age_ms`` relative
    to the newest are dropped as events arrive. ``excluded`` is bounded by ``max_excluded``
    (oldest dropped first) so a heavy buyer cannot grow memory without limit.
    """

    max_len: int = 50
    max_age_ms: int = 30 * 86_400_000
    max_excluded: int = 1000
    recent: deque[tuple[str, str, int]] = field(default_factory=deque)
    excluded: dict[str, int] = field(default_factory=dict)
    blacklisted: set[str] = field(default_factory=set)
    interactions: int = 0

    def add(self, event: Event, kind: str | None = None) -> None:
        """Record an event. ``kind`` overrides the type stored (``"rate_low"`` for a rating
        below the positive threshold, so it never counts as a conversion later)."""
        if event.item_id is None:
            return
        if event.event_type == "blacklist":
            self.blacklisted.add(event.item_id)
            self._exclude(event.item_id, event.timestamp_ms)
            self.recent = deque(entry for entry in self.recent if entry[0] != event.item_id)
            return
        if event.event_type in EXCLUDING_TYPES:
            self._exclude(event.item_id, event.timestamp_ms)
        entry = (event.item_id, kind or event.event_type, event.timestamp_ms)
        recent = self.recent
        if not recent or recent[-1][2] <= entry[2]:
            recent.append(entry)
        else:
            # A late event (topics are not ordered against each other): keep time order,
            # which items_since and the age trim rely on. Late events land near the end.
            position = len(recent)
            while position > 0 and recent[position - 1][2] > entry[2]:
                position -= 1
            recent.insert(position, entry)
        self.interactions += 1
        self._trim(recent[-1][2])

    def _exclude(self, item_id: str, timestamp_ms: int) -> None:
        self.excluded[item_id] = timestamp_ms
        if len(self.excluded) > self.max_excluded:
            # Blacklists are for good; the oldest purchase makes room.
            evictable = [k for k in self.excluded if k not in self.blacklisted]
            if evictable:
                del self.excluded[min(evictable, key=self.excluded.__getitem__)]

    def _trim(self, now_ms: int) -> None:
        while len(self.recent) > self.max_len:
            self.recent.popleft()
        while self.recent and now_ms - self.recent[0][2] > self.max_age_ms:
            self.recent.popleft()

    def items_since(self, since_ms: int, types: frozenset[str] | None = None) -> list[str]:
        """Distinct items of recent entries at or after ``since_ms``, newest first."""
        seen: dict[str, None] = {}
        for item_id, event_type, timestamp_ms in reversed(self.recent):
            if timestamp_ms < since_ms:
                break
            if types is None or event_type in types:
                seen.setdefault(item_id, None)
        return list(seen)

    def seen_items(self) -> set[str]:
        return {entry[0] for entry in self.recent} | set(self.excluded)

    def merge_from(self, other: UserHistory) -> None:
        """Fold an anonymous history into this one (login), keeping time order."""
        merged = sorted([*other.recent, *self.recent], key=lambda entry: entry[2])
        self.recent = deque(merged)
        for item_id, timestamp_ms in other.excluded.items():
            self._exclude(item_id, timestamp_ms)
        self.blacklisted |= other.blacklisted
        self.interactions += other.interactions
        if self.recent:
            self._trim(self.recent[-1][2])

    # --- plain-JSON form (stored in Redis; never a pickle) -----------------------------------
    def to_state(self) -> dict[str, Any]:
        return {
            "recent": [list(entry) for entry in self.recent],
            "excluded": self.excluded,
            "blacklisted": sorted(self.blacklisted),
            "interactions": self.interactions,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], **limits: int) -> UserHistory:
        history = cls(**limits)
        history.recent = deque((str(i), str(t), int(ts)) for i, t, ts in state.get("recent", []))
        history.excluded = {str(k): int(v) for k, v in state.get("excluded", {}).items()}
        history.blacklisted = set(state.get("blacklisted", []))
        history.interactions = int(state.get("interactions", 0))
        return history


def is_conversion(event: Event, positive_rating: float = 4.0) -> bool:
    """buy, consume, basket, or a rating from ``positive_rating`` up (DESIGN.md)."""
    if event.event_type == "rate":
        return event.value is not None and event.value >= positive_rating
    return event.event_type in CONVERSION_TYPES
