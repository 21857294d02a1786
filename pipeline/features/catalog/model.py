"""The stored form of a catalog item (``{p}:item:{item_id}``, documented in core/keys.py)."""

from __future__ import annotations

from collections.abc import Iterable

import orjson

from pipeline.core.items import Item


def item_hash(item: Item) -> dict[str, str]:
    """The fields of an item's hash."""
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
