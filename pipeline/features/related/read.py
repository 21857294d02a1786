"""Related items of one item, ranked now: co-occurrence counts with the popularity discount
applied at read time (``count / (popularity + 1) ** discount``), unavailable items left out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipeline.core.feedback import SIGNALS
from pipeline.core.ids import decode_id
from pipeline.core.keys import Keys
from pipeline.features.catalog.read import Availability
from pipeline.features.content.read import SIMILAR_CONTENT, read_similar
from pipeline.features.related.model import DISCOUNT_BY, RELATIONS, blend_related, rank_related
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
) -> list[dict[str, Any]]:
    """Related items of ``item_id``, best first, as the personal engine's ``related`` ranks
    them: one relation, or all blended (``relation`` None). ``depth`` partners are read per
    relation before the discount reorders them. ``similar_content`` is served from the
    content feature's neighbours (similar by text; no discount).

    The blend of an item with fewer than ``n`` partners (a new item, or one few users
    have met) is filled up with its content neighbours, after the learned ones and marked
    ``{"model": "content", "relation": "similar_content"}``: a new item's related list is
    its look-alikes until co-occurrences take their places. The engine's ``related`` (what
    ``pipeline evaluate`` scores) has no content and ranks only the learned part."""
    if relation == SIMILAR_CONTENT:
        return await read_similar(store, keys, availability, item_id, n, depth)
    relations = [relation] if relation else list(RELATIONS)
    reads = Reads()
    for name in relations:
        reads.zrange(keys.related(name, item_id), 0, depth - 1, desc=True)
    availability.queue(reads)
    *rows, version = await store.read(reads)
    hidden = await availability.settle(store, version)
    counts = {
        name: [(pid, score) for member, score in members if (pid := decode_id(member)) is not None]
        for name, members in zip(relations, rows, strict=True)
    }
    partners = sorted({pid for ranked in counts.values() for pid, _ in ranked})
    popularity: dict[str, dict[str, float]] = {}
    if partners:
        reads = Reads()
        for signal in SIGNALS:
            reads.hmget(keys.popularity(signal), partners)
        values = await store.read(reads)
        for signal, column in zip(SIGNALS, values, strict=True):
            popularity[signal] = {
                pid: float(v) for pid, v in zip(partners, column, strict=True) if v is not None
            }
    exclude = hidden | {item_id}
    lists = {
        name: rank_related(
            counts[name], popularity.get(DISCOUNT_BY[name], {}), discount, depth, exclude
        )
        for name in relations
    }
    found = [
        {
            "item_id": pid,
            "score": score,
            "source": {"model": "related", "relation": label, "source_items": [item_id]},
        }
        for pid, score, label in blend_related(lists, n)
    ]
    if relation is None and len(found) < n:
        listed = {entry["item_id"] for entry in found}
        similar = await read_similar(store, keys, availability, item_id, n, depth)
        found += [entry for entry in similar if entry["item_id"] not in listed][: n - len(found)]
    return found


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
