"""Agent group ``catalog``: item records into Redis hashes (see model.py for the layout)."""

from __future__ import annotations

from pipeline.core.events import Rejection
from pipeline.core.items import Item, parse_item_message
from pipeline.core.keys import Keys
from pipeline.features.catalog.model import item_hash, latest_versions
from pipeline.store.base import Store, Writes
from pipeline.stream.handler import Handler


class CatalogHandler(Handler[Item]):
    """Reads the catalog topic; each item's latest version replaces its hash whole."""

    name = "catalog"
    phase = 0

    def __init__(self, keys: Keys) -> None:
        self.keys = keys

    def decode(self, value: bytes | None) -> tuple[list[Item], list[Rejection]]:
        item, rejection = parse_item_message(value)
        if item is not None:
            return [item], []
        assert rejection is not None
        return [], [rejection]

    async def plan(self, store: Store, records: list[Item]) -> Writes:
        writes = Writes()
        latest = latest_versions(records)
        for item in latest.values():
            key = self.keys.item(item.item_id)
            writes.delete(key)
            writes.hset(key, item_hash(item))
            writes.zadd(self.keys.items(), {item.item_id: item.created_at_ms or 0})
        unavailable = self.keys.unavailable_items()
        writes.srem(unavailable, sorted(i.item_id for i in latest.values() if i.available))
        writes.sadd(unavailable, sorted(i.item_id for i in latest.values() if not i.available))
        # Readers cache the unavailable set until this moves.
        return writes.incr(self.keys.catalog_version())
