"""Agent group ``catalog``: item records into Redis (see catalog.py for the layout)."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from pipeline.catalog import item_hash, latest_versions
from pipeline.events import Item, Rejection, parse_item_message
from pipeline.keys import Keys


class CatalogHandler:
    """Agent group ``catalog``: reads the catalog topic."""

    name = "catalog"

    def __init__(self, keys: Keys) -> None:
        self.keys = keys

    def decode(self, value: bytes | None) -> tuple[list[Item], list[Rejection]]:
        item, rejection = parse_item_message(value)
        return ([item], []) if item is not None else ([], [rejection])  # type: ignore[list-item]

    async def plan(self, redis: aioredis.Redis, records: list[Item]) -> Any:
        latest = latest_versions(records)

        def queue(pipe: Any) -> None:
            for item in latest.values():
                key = self.keys.item(item.item_id)
                pipe.delete(key)
                pipe.hset(key, mapping=item_hash(item))
                pipe.zadd(self.keys.items(), {item.item_id: item.created_at_ms or 0})

        return queue
