"""Scores kept in rank order as they change, so the top of the ranking costs O(n), not a sort.

Popularity and trending counters change by one key at a time: moving that key within a
sorted list (a binary search and a memmove) is far cheaper than sorting every key whenever
the top is asked for. But a worker adds thousands of events between two reads, and then
one sort at the read costs less than moving each key as it changes: past
:data:`EAGER_ADDS` changes without a read, keys are no longer moved but noted, and the
order is brought up to date when the top is next asked for (sorted again when many keys
changed, else each noted key moved once). An evaluation, which reads every few events,
moves each key as it changes (noting and moving later cost more there: 1.2 s against 1.0
of a dense log's replay).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Collection, Iterator, Mapping

# Changes without a read after which keys are noted instead of moved.
EAGER_ADDS = 256


class RankedScores:
    """Key -> score, ranked by descending score, ties by key (ascending)."""

    __slots__ = ("_adds", "_moved", "_order", "_score")

    def __init__(self, scores: Mapping[str, float] | None = None) -> None:
        self._score: dict[str, float] = dict(scores or {})
        self._order = sorted((-score, key) for key, score in self._score.items())
        # Keys whose score changed since ``_order`` was last brought up to date, with
        # their score in it (None: not in it yet); empty while keys are moved as they change.
        self._moved: dict[str, float | None] = {}
        # Changes since the last read.
        self._adds = 0

    def add(self, key: str, amount: float) -> float:
        """Add ``amount`` to ``key``'s score (0 when new); returns the new score."""
        score = self._score
        old = score.get(key)
        new = score[key] = amount if old is None else old + amount
        moved = self._moved
        if moved or self._adds >= EAGER_ADDS:
            if key not in moved:
                moved[key] = old
        else:
            self._adds += 1
            self._place(key, old, new)
        return new

    def _place(self, key: str, old: float | None, new: float) -> None:
        """Move ``key`` in the order from ``old`` (None: not in it) to ``new``."""
        order = self._order
        entry = (-new, key)
        if old is None:
            insort(order, entry)
            return
        at = bisect_left(order, (-old, key))
        if new >= old:
            to = bisect_left(order, entry, 0, at)
        else:
            to = bisect_left(order, entry, at + 1) - 1
        if to != at:
            _move(order, at, to)
        order[to] = entry

    def _settle(self) -> None:
        """Bring the order up to date with the noted keys: sorted again when many changed,
        else each moved from its old place to its new one."""
        moved, self._moved = self._moved, {}
        if 8 * len(moved) > len(self._order):
            self._order = sorted((-score, key) for key, score in self._score.items())
            return
        score = self._score
        for key, old in moved.items():
            self._place(key, old, score[key])

    def top(self, n: int, exclude: Collection[str] = ()) -> list[tuple[str, float]]:
        """The ``n`` best (key, score) pairs not in ``exclude``."""
        out: list[tuple[str, float]] = []
        if n <= 0:
            return out
        self._adds = 0
        if self._moved:
            self._settle()
        for negative, key in self._order:
            if key not in exclude:
                out.append((key, -negative))
                if len(out) == n:
                    break
        return out

    def get(self, key: str, default: float = 0.0) -> float:
        return self._score.get(key, default)

    def __getitem__(self, key: str) -> float:
        return self._score[key]

    def __contains__(self, key: object) -> bool:
        return key in self._score

    def __len__(self) -> int:
        return len(self._score)

    def __iter__(self) -> Iterator[str]:
        return iter(self._score)

    def items(self) -> Iterator[tuple[str, float]]:
        return iter(self._score.items())

    def as_dict(self) -> dict[str, float]:
        return dict(self._score)


def _move(order: list[tuple[float, str]], at: int, to: int) -> None:
    """Move the entry at ``at`` to ``to``, the entries between moving by one. A slice copy
    moves only those between but counts each entry's references (several nanoseconds an
    entry); a delete and an insert move the tail of the list twice, as plain memory (a
    fraction of a nanosecond an entry). The busiest keys sit near the top, where the tail
    is the whole list and few entries lie between; a key of the long tail moving up past
    the many that share its score (tens of thousands in a wide catalog) is the other way
    round."""
    if 16 * abs(at - to) > 2 * len(order) - at - to:
        order.insert(to, order.pop(at))
    elif to < at:
        order[to + 1 : at + 1] = order[to:at]
    else:
        order[at:to] = order[at + 1 : to + 1]
