"""Reading trending lists: the current top items of one set, decayed to now."""

from __future__ import annotations

from typing import Any

from pipeline.core.decay import decayed, generation
from pipeline.core.ids import decode_id
from pipeline.core.kept import KeptLists
from pipeline.core.keys import Keys
from pipeline.features.catalog.read import Availability
from pipeline.store.base import Reads, Store

# Pages of candidates read at most (the first one included), so that unavailable items
# rarely leave the list short.
MAX_PAGES = 3


def page_sizes(n: int, known_hidden: int) -> tuple[int, int]:
    """(first page, later pages). Later pages hold ``2n + 20`` candidates; the first holds
    ``n`` plus one per item the reader last knew unavailable, at most as many as a later
    page: a catalog with nothing withdrawn costs ``n`` rows instead of ``2n + 20``, and no
    first page is longer than before."""
    later = n * 2 + 20
    return min(n + known_hidden, later), later


async def read_trending(
    store: Store,
    keys: Keys,
    availability: Availability,
    kind: str,
    window: str,
    half_life_s: float,
    category: str | None,
    n: int,
    now_ms: int,
    lists: KeptLists | None = None,
) -> list[dict[str, Any]]:
    """Top ``n`` available items of one trending set, scores decayed to ``now_ms``.

    Reads the generation current at ``now_ms`` (the agent writes each event into its own
    generation and the next, so the current one is complete). Reads a first page of
    candidates (:func:`page_sizes`), then more pages while candidates are unavailable or
    malformed, ``MAX_PAGES`` in all, so the list is short only when nearly all candidates
    are. Candidates past the ``n``-th served one are never decoded. Without ``lists`` the
    first page and the catalog's version are read in one round trip.

    With ``lists``, the catalog's version is read first (one GET), and a ranking of ``n``
    items younger than its ``max_age_s`` is served again instead of the pages (scores still
    decayed to ``now_ms``), unless one of its items has become unavailable since
    (:meth:`KeptLists.kept_or_ranked`); a shorter list is read again at every request. The
    returned dicts are the caller's to change.
    """
    gen = generation(now_ms, half_life_s)
    key = keys.trending(kind, window, gen, category)
    # One factor for the whole set: every member of a generation decays alike.
    scale = decayed(1.0, gen, half_life_s, now_ms)
    if lists is None or lists.max_age_s <= 0:
        first_page, page = page_sizes(n, len(availability.last_known()))
        # The first page and the catalog's version in one round trip.
        reads = Reads().zrange(key, 0, first_page - 1, desc=True)
        availability.queue(reads)
        rows, version = await store.read(reads)
        hidden = await availability.settle(store, version)
        ranked = await _first_available(store, key, rows, first_page, page, hidden, n)
    else:
        hidden = await availability.hidden(store)

        async def rank() -> list[dict[str, Any]]:
            first_page, page = page_sizes(n, len(hidden))
            rows = await store.zrange(key, 0, first_page - 1, desc=True)
            return await _first_available(store, key, rows, first_page, page, hidden, n)

        ranked = await lists.kept_or_ranked((key, n), hidden, n, rank)
    source = {"model": "trending", "kind": kind, "window": window, "category": category}
    return [
        {"item_id": entry["item_id"], "score": entry["stored"] * scale, "source": source}
        for entry in ranked
    ]


async def _first_available(
    store: Store,
    key: str,
    rows: list[tuple[bytes, float]],
    first_page: int,
    page: int,
    hidden: frozenset[str],
    n: int,
) -> list[dict[str, Any]]:
    """The first ``n`` valid, available members of ``key`` as ``{"item_id", "stored"}``,
    from ``rows`` (its first page, of ``first_page`` rows asked for) on."""
    found: list[dict[str, Any]] = []
    start, size, pages_left = 0, first_page, MAX_PAGES - 1
    while True:
        for member, stored in rows:
            item_id = decode_id(member)
            if item_id is None or item_id in hidden:
                continue
            found.append({"item_id": item_id, "stored": stored})
            if len(found) == n:
                return found
        if len(rows) < size or not pages_left:
            return found
        start, size, pages_left = start + size, page, pages_left - 1
        rows = await store.zrange(key, start, start + size - 1, desc=True)
