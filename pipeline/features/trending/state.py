"""Trending per category when an item's categories change (the catalog agent calls this).

Events find an item's categories in the catalog when they are applied; the item's record
may arrive after its events (another topic), or change. The rule that makes the result
independent of that order: an item's score in the set of a category equals its score in the
set of all items, for each of its *current* categories, and it is in no other category's
set. Increments keep the rule between catalog changes (an event adds the same amount to
both sets); when the categories change, :func:`move_writes` copies the item's score from
the set of all items into the sets of its new categories and removes it from those of the
categories it lost, for every kind, window and live generation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pipeline.core.decay import expire_at_s, generation
from pipeline.core.keys import Keys
from pipeline.features.trending.model import TrendingConfig
from pipeline.store.base import Reads, Store, Writes

# item_id -> (categories before, categories now)
CategoryChanges = Mapping[str, tuple[Iterable[str], Iterable[str]]]


def live_generations(now_ms: int, max_future_ms: int, half_life_s: float) -> range:
    """Generations whose sets may exist at ``now_ms``: a set of ``g`` expires a half-life
    into ``g + 1``, and events may be stamped up to ``max_future_ms`` ahead (plus the next
    generation each event also feeds)."""
    return range(
        generation(now_ms, half_life_s) - 1,
        generation(now_ms + max_future_ms, half_life_s) + 2,
    )


async def move_writes(
    store: Store,
    keys: Keys,
    config: TrendingConfig,
    max_items: int,
    changes: CategoryChanges,
    now_ms: int,
    max_future_ms: int,
) -> Writes:
    """Writes that move the trending scores of items whose categories changed (one read)."""
    writes = Writes()
    moved = {
        item_id: (set(now) - set(before), set(before) - set(now))
        for item_id, (before, now) in changes.items()
        if set(now) != set(before)
    }
    if not moved:
        return writes
    items = sorted(moved)
    targets = [
        (kind, window, gen)
        for kind in config.kinds
        for window, half_life in config.windows.items()
        for gen in live_generations(now_ms, max_future_ms, half_life)
    ]
    reads = Reads()
    for kind, window, gen in targets:
        reads.zmscore(keys.trending(kind, window, gen), items)
    rows = await store.read(reads)
    for (kind, window, gen), scores in zip(targets, rows, strict=True):
        expire = expire_at_s(gen, config.windows[window])
        for item_id, score in zip(items, scores, strict=True):
            gained, lost = moved[item_id]
            for category in sorted(lost):
                writes.zrem(keys.trending(kind, window, gen, category), [item_id])
            if score is None:
                continue
            for category in sorted(gained):
                key = keys.trending(kind, window, gen, category)
                writes.zadd(key, {item_id: float(score)})
                writes.ztrim(key, max_items)
                writes.expire_at(key, expire)
    return writes
