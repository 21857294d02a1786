"""An item's most similar items by text, as the ``content`` agent group keeps them, with
unavailable items left out (``relation=similar_content`` of related items, and scenarios)."""

from __future__ import annotations

from typing import Any

from pipeline.core.ids import decode_id
from pipeline.core.keys import Keys
from pipeline.features.catalog.read import Availability
from pipeline.store.base import Reads, Store

# The relation name under which related items serve content neighbours.
SIMILAR_CONTENT = "similar_content"


async def read_similar(
    store: Store, keys: Keys, availability: Availability, item_id: str, n: int, depth: int
) -> list[dict[str, Any]]:
    """The ``n`` items most similar to ``item_id`` by text, best first, each with its cosine
    similarity as ``score``; ``depth`` (the neighbours stored per item) are read so that
    unavailable ones can be left out."""
    reads = Reads().zrange(keys.content_similar(item_id), 0, depth - 1, desc=True)
    availability.queue(reads)
    members, version = await store.read(reads)
    hidden = await availability.settle(store, version)
    found: list[dict[str, Any]] = []
    for member, score in members:
        other = decode_id(member)
        if other is None or other in hidden or other == item_id:
            continue
        found.append(
            {
                "item_id": other,
                "score": score,
                "source": {
                    "model": "content",
                    "relation": SIMILAR_CONTENT,
                    "source_items": [item_id],
                },
            }
        )
        if len(found) == n:
            break
    return found
