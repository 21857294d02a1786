"""Reading trending lists: the current top items of one set, decayed to now."""

from __future__ import annotations

from typing import Any

from pipeline.core.decay import decayed, generation
from pipeline.core.ids import decode_id
from pipeline.core.keys import Keys
from pipeline.features.catalog.read import Availability
from pipeline.store.base import Reads, Store

# Candidate pages read at most, so that unavailable items rarely leave the list short.
MAX_PAGES = 3


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
) -> list[dict[str, Any]]:
    """Top ``n`` available items of one trending set, scores decayed to ``now_ms``.

    Reads the generation current at ``now_ms`` (the agent writes each event into its own
    generation and the next, so the current one is complete). Fetches ``2n + 20`` candidates
    per page and at most ``MAX_PAGES`` pages, so the list is short only when nearly all
    candidates are unavailable.
    """
    gen = generation(now_ms, half_life_s)
    key = keys.trending(kind, window, gen, category)
    source = {"model": "trending", "kind": kind, "window": window, "category": category}
    page = n * 2 + 20
    items: list[dict[str, Any]] = []
    # The first page and the catalog's version in one round trip.
    reads = Reads().zrange(key, 0, page - 1, desc=True)
    availability.queue(reads)
    first, version = await store.read(reads)
    hidden = await availability.settle(store, version)
    for start in range(0, page * MAX_PAGES, page):
        rows = first if start == 0 else await store.zrange(key, start, start + page - 1, desc=True)
        candidates = [
            (item_id, score) for member, score in rows if (item_id := decode_id(member)) is not None
        ]
        for item_id, stored in candidates:
            if item_id in hidden:
                continue
            score = decayed(stored, gen, half_life_s, now_ms)
            items.append({"item_id": item_id, "score": score, "source": source})
            if len(items) == n:
                return items
        if len(rows) < page:
            break
    return items
