"""Catalog: item records as Redis hashes (later versions replace earlier ones), and reads.

The agent that writes them is ``catalog_agent.py``; readers use :func:`categories_of`."""

from __future__ import annotations

from collections.abc import Iterable

import orjson
import redis.asyncio as aioredis

from pipeline.events import Item, valid_id
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


async def categories_of(
    redis: aioredis.Redis, keys: Keys, item_ids: list[str]
) -> dict[str, list[str]]:
    """Catalog categories of each item (one round trip); unknown items have none.

    Redis is a public contract that others may write: a malformed field counts as no
    categories rather than stopping the agent, and only valid ids are returned.
    """
    if not item_ids:
        return {}
    async with redis.pipeline(transaction=False) as pipe:
        for item_id in item_ids:
            pipe.hget(keys.item(item_id), "categories")
        values = await pipe.execute()
    return {
        item_id: parse_categories(value) for item_id, value in zip(item_ids, values, strict=True)
    }


def parse_categories(value: bytes | str | None) -> list[str]:
    """The ``categories`` field of a catalog hash; anything malformed reads as none."""
    if not value:
        return []
    try:
        decoded = orjson.loads(value)
    except orjson.JSONDecodeError:
        return []
    if not isinstance(decoded, list):
        return []
    return [category for category in decoded if valid_id(category)]
