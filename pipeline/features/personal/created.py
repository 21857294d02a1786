"""Items' creation times in the personal engine: what makes an item *new*.

The catalog's ``created_at`` of each item, by the factor model's index, so that "created
since" is one vectorised comparison per list. Times can be told before the item is in the
model (an evaluation knows the whole catalog; a vector may arrive before the first event):
they wait in a dict and move into the array when the item joins.

An item is *told* once the catalog answered for it, with a time or with none (its record
has no ``created_at``: never new). Items the catalog has no record of yet are not told, so
a worker asks again when they come back (catalogs are often published after their events).

Pure: numpy only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np

from pipeline.features.personal.mf import ImplicitMF

# Seconds before an item the catalog had no record of is asked about again.
ASK_AGAIN_S = 60.0


class CreationTimes:
    """Creation time (epoch ms) of each model item; -inf for none."""

    def __init__(self) -> None:
        self.by_index = np.full(64, -np.inf)
        # Told, not yet in the model: item -> time (-inf: none).
        self.waiting: dict[str, float] = {}
        self.told: set[str] = set()
        # Items the catalog had no record of -> when they were asked (monotonic seconds).
        self.asked: dict[str, float] = {}
        # Model items already matched against ``waiting``.
        self.matched = 0
        # Moves whenever a time is told (what caches of :meth:`since` depend on).
        self.version = 0

    def tell(self, model: ImplicitMF, created: Mapping[str, int | None]) -> None:
        """Record the catalog's answer for items: a time, or None when the record has none."""
        for item_id, when in created.items():
            value = -np.inf if when is None else float(when)
            self.told.add(item_id)
            self.asked.pop(item_id, None)
            index = model.item_index.get(item_id)
            if index is None:
                self.waiting[item_id] = value
            else:
                # An answer still waiting from before the item joined is older than this one.
                self.waiting.pop(item_id, None)
                self._fit(index + 1)
                self.by_index[index] = value
        self.version += 1

    def unanswered(self, item_ids: Iterable[str], now_s: float) -> None:
        """Record that the catalog had no record of ``item_ids`` at ``now_s``."""
        for item_id in item_ids:
            if item_id not in self.told:
                self.asked[item_id] = now_s

    def untold(self, item_ids: Iterable[str], now_s: float = math.inf) -> list[str]:
        """The ``item_ids`` the catalog has not answered for, sorted, without those asked
        less than :data:`ASK_AGAIN_S` before ``now_s`` (so an item the catalog does not
        know costs one question a minute, not one per batch)."""
        asked = self.asked
        return sorted(
            {
                item
                for item in item_ids
                if item not in self.told and now_s - asked.get(item, -math.inf) >= ASK_AGAIN_S
            }
        )

    def since(self, model: ImplicitMF, since_ms: float, until_ms: float = np.inf) -> np.ndarray:
        """Whether each model item (index order) was created at ``since_ms`` or later (and
        at ``until_ms`` or earlier)."""
        created = self.times(model)
        return (created >= since_ms) & (created <= until_ms)

    def times(self, model: ImplicitMF) -> np.ndarray:
        """The creation time of each model item (index order; -inf: none or untold)."""
        n = len(model.item_ids)
        self._fit(n)
        if self.waiting and self.matched < n:
            for index in range(self.matched, n):
                value = self.waiting.pop(model.item_ids[index], None)
                if value is not None:
                    self.by_index[index] = value
        self.matched = n
        return self.by_index[:n]

    def _fit(self, size: int) -> None:
        if size > len(self.by_index):
            grown = np.full(max(size, 2 * len(self.by_index)), -np.inf)
            grown[: len(self.by_index)] = self.by_index
            self.by_index = grown
