"""Reading items' catalog fields: the one place other features learn an item's categories,
attributes and availability.

Items missing from the catalog read as no categories, no attributes and available: events
may arrive before the catalog does. Malformed stored fields read as absent (Redis is a
public contract that others may write).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.core.items import stored_attributes, stored_categories
from pipeline.core.keys import Keys
from pipeline.store.base import Reads, Store

CATEGORIES = "categories"
ATTRIBUTES = "attributes"
AVAILABLE = "available"


@dataclass(frozen=True, slots=True)
class ItemFields:
    categories: list[str] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)
    available: bool = True


def queue_item_fields(reads: Reads, keys: Keys, item_id: str, fields: Sequence[str]) -> None:
    """Add the read of one item's ``fields`` to ``reads`` (answer: see :func:`parse_item_fields`)."""
    reads.hmget(keys.item(item_id), fields)


def parse_item_fields(fields: Sequence[str], values: Sequence[bytes | None]) -> ItemFields:
    """The answer of :func:`queue_item_fields` as :class:`ItemFields`."""
    found = dict(zip(fields, values, strict=True))
    return ItemFields(
        categories=stored_categories(found.get(CATEGORIES)),
        attributes=stored_attributes(found.get(ATTRIBUTES)),
        available=found.get(AVAILABLE) != b"0",
    )


async def item_fields(
    store: Store, keys: Keys, item_ids: Sequence[str], fields: Sequence[str]
) -> dict[str, ItemFields]:
    """``fields`` (of CATEGORIES, ATTRIBUTES, AVAILABLE) of each item, in one round trip."""
    if not item_ids:
        return {}
    reads = Reads()
    for item_id in item_ids:
        queue_item_fields(reads, keys, item_id, fields)
    rows = await store.read(reads)
    return {
        item_id: parse_item_fields(fields, row) for item_id, row in zip(item_ids, rows, strict=True)
    }


async def categories_of(store: Store, keys: Keys, item_ids: Sequence[str]) -> dict[str, list[str]]:
    """Catalog categories of each item (one round trip); unknown items have none."""
    found = await item_fields(store, keys, item_ids, (CATEGORIES,))
    return {item_id: fields.categories for item_id, fields in found.items()}


async def unavailable_items(store: Store, keys: Keys, item_ids: Sequence[str]) -> set[str]:
    """Ids whose catalog record says ``available: false`` (one round trip); unknown items
    are available."""
    found = await item_fields(store, keys, item_ids, (AVAILABLE,))
    return {item_id for item_id, fields in found.items() if not fields.available}
