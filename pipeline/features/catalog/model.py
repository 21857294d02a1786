"""The stored form of a catalog item (``{p}:item:{item_id}``, documented in core/keys.py),
and the view readers take of it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

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


@dataclass(frozen=True, slots=True)
class CatalogView:
    """What filters and responses need of one item, read from its catalog hash. An item
    missing from the catalog has no categories, no attributes and is available."""

    categories: tuple[str, ...] = ()
    attributes: Mapping[str, Any] = field(default_factory=dict)
    available: bool = True
    created_at_ms: int | None = None
    price: float | None = None
    title: str | None = None

    def value(self, name: str) -> Any:
        if name == "price":
            return self.price
        if name == "created_at":
            return self.created_at_ms
        return self.attributes.get(name)
