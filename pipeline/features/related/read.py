"""Related items of one item, ranked now: co-occurrence counts with the popularity discount
applied at read time (``count / (popularity + 1) ** discount``), unavailable items left out.
The store ranks and blends (:meth:`pipeline.store.base.Reads.related_blend`; in Redis a
script), so a request reads ``n`` rows, not every partner with its popularity. A reader
keeps each ranked list for a moment (:class:`KeptLists`): a popular item's list is ranked
once per ``reader_related_cache_ms``, not once per request."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipeline.core.feedback import SIGNALS
from pipeline.core.ids import valid_id
from pipeline.core.kept import KeptLists
from pipeline.core.keys import Keys
from pipeline.features.catalog.read import Availability
from pipeline.features.content.read import SIMILAR_CONTENT, read_similar
from pipeline.features.related.model import DISCOUNT_BY, RELATIONS
from pipeline.store.base import Reads, Store


async def read_related(
    store: Store,
    keys: Keys,
    availability: Availability,
    item_id: str,
    relation: str | None,
    n: int,
    depth: int,
    discount: float,
    lists: KeptLists | None = None,
) -> list[dict[str, Any]]:
    """Related items of ``item_id``, best first, as the personal engine's ``related`` ranks
    them: one relation, or all blended (``relation`` None). ``depth`` partners are read per
    relation before the discount reorders them. ``similar_content`` is served from the
    content feature's neighbours (similar by text; no discount).

    The blend of an item with fewer than ``n`` partners (a new item, or one few users
    have met) is filled up with its content neighbours, after the learned ones and marked
    ``{"model": "content", "relation": "similar_content"}``: a new item's related list is
    its look-alikes until co-occurrences take their places. The engine's ``related`` (what
    ``pipeline evaluate`` scores) has no content and ranks only the learned part.
    Unavailable items are those of the catalog's unavailable set as the read finds it;
    stored partners that break the id contract are never served.

    With ``lists``, a list of ``n`` items ranked less than its ``max_age_s`` ago is served
    again (one GET of the catalog version instead of the ranking; entries are shared: do not
    change them); a shorter one is ranked at every request
    (:meth:`KeptLists.kept_or_ranked`)."""
    if relation == SIMILAR_CONTENT:
        return await read_similar(store, keys, availability, item_id, n, depth)

    async def rank() -> list[dict[str, Any]]:
        relations = [relation] if relation else list(RELATIONS)
        # Ranked and blended in Redis (one reply of n rows, not every partner and its
        # popularity): Reads.related_blend applies pipeline.core.blend's rule, the engine's.
        sets = [
            (keys.related(name, item_id), keys.popularity(DISCOUNT_BY[name]), name)
            for name in relations
        ]
        reads = Reads().related_blend(sets, keys.unavailable_items(), item_id, depth, discount, n)
        (rows,) = await store.read(reads)
        found = [
            {
                "item_id": pid,
                "score": score,
                "source": {"model": "related", "relation": label, "source_items": [item_id]},
            }
            for pid, score, label in rows
            if valid_id(pid)
        ]
        if relation is None and len(found) < n:
            listed = {entry["item_id"] for entry in found}
            similar = await read_similar(store, keys, availability, item_id, n, depth)
            fill = [entry for entry in similar if entry["item_id"] not in listed]
            found += fill[: n - len(found)]
        return found

    if lists is None or lists.max_age_s <= 0:
        return await rank()
    key = (item_id, relation, n, depth, discount)  # what a ranked list depends on
    return await lists.kept_or_ranked(key, await availability.hidden(store), n, rank)


async def positive_events(store: Store, keys: Keys, item_ids: Sequence[str]) -> dict[str, float]:
    """Positive events (clicks and conversions) counted per item so far, in one round trip;
    items never seen count 0."""
    if not item_ids:
        return {}
    reads = Reads()
    for signal in SIGNALS:
        reads.hmget(keys.popularity(signal), list(item_ids))
    columns = await store.read(reads)
    return {
        item_id: sum(float(column[index] or 0) for column in columns)
        for index, item_id in enumerate(item_ids)
    }
