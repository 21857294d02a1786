"""Catalog: item records into Redis hashes (later versions replace earlier ones)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
import redis.asyncio as aioredis

from pipeline.events import Item, Rejection, parse_item_message
from pipeline.keys import Keys


def item_hash(item: Item) -> dict[str, str]:
    """The fields of ``{p}:item:{item_id}`` (documented in keys.py)."""
    fields = {
        "item_id": item.item_id,
        "categories": orjson.dumps(list(item.categories)).decode(),
        "attributes": orjson.dumps(item.attributes).decode(),
        "available": "1" if item.available else "0",
    }
    if item.created_at_ms is not None:
        fields["created_at"] = str(item.created_at_ms)
    if item.price is not None:
        fields["price"] = repr(item.price)
    if item.title is not None:
        fields["title"] = item.title
    return fields


def latest_versions(items: Iterable[Item]) -> dict[str, Item]:
    """Last version of each item in arrival order (Kafka keeps one item's versions in order)."""
    latest: dict[str, Item] = {}
    for item in items:
        latest[item.item_id] = item
    return latest


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


async def categories_of(
    redis: aioredis.Redis, keys: Keys, item_ids: list[str]
) -> dict[str, list[str]]:
    """Catalog categories of each item (one round trip); unknown items have none."""
    if not item_ids:
        return {}
    async with redis.pipeline(transaction=False) as pipe:
        for item_id in item_ids:
            pipe.hget(keys.item(item_id), "categories")
        values = await pipe.execute()
    return {
        item_id: orjson.loads(value) if value else []
        for item_id, value in zip(item_ids, values, strict=True)
    }
