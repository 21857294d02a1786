"""Lists a reader keeps between requests for a moment, so that a list many requests ask for
is ranked once per ``max_age_s`` instead of once per request (related items, trending)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

Entries = list[dict[str, Any]]


class KeptLists:
    """Ranked lists of ``{"item_id", ...}`` entries, each kept for at most ``max_age_s``.

    A kept list is served only while none of its items is unavailable (the caller passes
    the unavailable items of the moment), so a withdrawn item leaves at once; what changes
    the ranking reaches it within ``max_age_s``. ``max_age_s`` 0 keeps nothing. At most
    ``limit`` lists are kept (the oldest go first). Requests that miss the same list while
    it is being ranked wait for that one ranking (:meth:`kept_or_ranked`) instead of each
    running their own. Kept entries are shared between requests: do not change them.
    """

    def __init__(
        self, max_age_s: float, limit: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_age_s = max_age_s
        self.limit = limit
        self.clock = clock
        self._lists: dict[Hashable, tuple[float, Entries]] = {}
        # Lists being ranked -> the ranking's outcome (None: it failed or was cancelled).
        self._ranking: dict[Hashable, asyncio.Future[Entries | None]] = {}

    def get(self, key: Hashable, hidden: frozenset[str]) -> Entries | None:
        """The kept list of ``key`` when it is young enough and holds no ``hidden`` item."""
        kept = self._lists.get(key)
        if kept is None:
            return None
        ranked_at, entries = kept
        if self.clock() - ranked_at >= self.max_age_s or any(
            entry["item_id"] in hidden for entry in entries
        ):
            del self._lists[key]
            return None
        return entries

    def put(self, key: Hashable, entries: Entries) -> None:
        if self.max_age_s <= 0:
            return
        self._lists.pop(key, None)
        if len(self._lists) >= self.limit:
            del self._lists[next(iter(self._lists))]
        self._lists[key] = (self.clock(), entries)

    async def kept_or_ranked(
        self,
        key: Hashable,
        hidden: frozenset[str],
        n: int,
        rank: Callable[[], Awaitable[Entries]],
    ) -> Entries:
        """The kept list of ``key`` (:meth:`get`), else the outcome of the ranking another
        request has started (unless it holds an item of this request's ``hidden``), else
        ``rank()``'s, kept when it holds ``n`` items. A shorter list is ranked again at
        every request: its next item (an item's next partner, a set's next member) shows
        at once, and a scenario stage does not fall back meanwhile. A request whose shared
        ranking failed, or served an item hidden since, ranks on its own."""
        kept = self.get(key, hidden)
        if kept is not None:
            return kept
        shared = self._ranking.get(key)
        if shared is not None:
            # shield: a waiter's own cancellation must not cancel the ranking of the others.
            theirs = await asyncio.shield(shared)
            if theirs is not None and not any(entry["item_id"] in hidden for entry in theirs):
                return theirs
            return await rank()
        outcome: asyncio.Future[Entries | None]
        outcome = self._ranking[key] = asyncio.get_running_loop().create_future()
        found = None
        try:
            found = await rank()
            if len(found) >= n:
                self.put(key, found)
            return found
        finally:
            del self._ranking[key]
            outcome.set_result(found)
