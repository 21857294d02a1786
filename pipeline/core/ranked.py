"""Scores kept in rank order as they change, so the top of the ranking costs O(n), not a sort.

Popularity and trending counters change by one key at a time: moving that key within a
sorted list (a binary search and a memmove) is far cheaper than sorting every key whenever
the top is asked for. The order is brought up to date when the top is next asked for, not
at every change: a worker adds thousands of events between two reads (one sort then costs
less than moving each key as it changes), an evaluation a few (each key is moved).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Collection, Iterator, Mapping


class RankedScores:
    """Key -> score, ranked by descending score, ties by key (ascending)."""

    __slots__ = ("_moved", "_order", "_score")

    def __init__(self, scores: Mapping[str, float] | None = None) -> None:
        self._score: dict[str, float] = dict(scores or {})
        self._order = sorted((-score, key) for key, score in self._score.items())
        # Keys whose score changed since ``_order`` was last brought up to date, with
        # their score in it (None: not in it yet).
        self._moved: dict[str, float | None] = {}

    def add(self, key: str, amount: float) -> float:
        """Add ``amount`` to ``key``'s score (0 when new); returns the new score."""
        score = self._score
        old = score.get(key)
        if key not in self._moved:
            self._moved[key] = old
        new = score[key] = amount if old is None else old + amount
        return new

    def _settle(self) -> None:
        """Bring the order up to date: sorted again when many keys changed, else each
        changed key moved from its old place to its new one."""
        moved, self._moved = self._moved, {}
        order = self._order
        if 8 * len(moved) > len(order):
            self._order = sorted((-score, key) for key, score in self._score.items())
            return
        for key, old in moved.items():
            new = self._score[key]
            entry = (-new, key)
            if old is None:
                insort(order, entry)
                continue
            at = bisect_left(order, (-old, key))
            if new >= old:
                to = bisect_left(order, entry, 0, at)
            else:
                to = bisect_left(order, entry, at + 1) - 1
            if to != at:
                _move(order, at, to)
            order[to] = entry

    def top(self, n: int, exclude: Collection[str] = ()) -> list[tuple[str, float]]:
        """The ``n`` best (key, score) pairs not in ``exclude``."""
        out: list[tuple[str, float]] = []
        if n <= 0:
            return out
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
