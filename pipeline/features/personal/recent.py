"""The users a personal worker saw last: whose lists to recompute when new items join.

Pure: the standard library only.
"""

from __future__ import annotations

from collections.abc import Iterable


class RecentUsers:
    """Users of a worker's recent batches with the time of their latest event, at most
    ``limit``, the least recent dropped first. Users whose data expired (no event for
    ``max_age_ms``) are never offered: their lists must not come back."""

    def __init__(self, limit: int, max_age_ms: int) -> None:
        self.limit = limit
        self.max_age_ms = max_age_ms
        # User -> time of their latest event, least recent first.
        self._latest: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._latest)

    def note(self, events: Iterable[tuple[str, int]], gone: Iterable[str] = ()) -> None:
        """``(user, event time)`` of a batch in event order (they become the most recent);
        ``gone`` users (forgotten, or merged into another at a login) leave."""
        if self.limit <= 0:
            return
        latest = self._latest
        for user, at_ms in events:
            previous = latest.pop(user, at_ms)
            latest[user] = max(previous, at_ms)
        for user in gone:
            latest.pop(user, None)
        for user in list(latest)[: max(len(latest) - self.limit, 0)]:
            del latest[user]

    def active(self, now_ms: int) -> list[str]:
        """The users with an event within ``max_age_ms`` of ``now_ms``, most recent first."""
        since = now_ms - self.max_age_ms
        return [user for user, at_ms in reversed(self._latest.items()) if at_ms >= since]
