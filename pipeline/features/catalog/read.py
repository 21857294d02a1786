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

from pipeline.core.ids import decode_id
from pipeline.core.items import stored_attributes, stored_categories
from pipeline.core.keys import Keys
from pipeline.features.catalog.model import CatalogView
from pipeline.store.base import Reads, Store

CATEGORIES = "categories"
ATTRIBUTES = "attributes"
AVAILABLE = "available"
ALL_FIELDS = (CATEGORIES, ATTRIBUTES, AVAILABLE)


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


class CatalogCache:
    """Catalog fields of items as a worker's handler reads them batch after batch: kept in
    memory until the catalog agent moves ``{p}:catalog:version`` (every batch of items
    does, in the transaction that writes them), so a batch costs one GET plus the fields of
    the items it is the first to name, instead of one HMGET per item. Items missing from
    the catalog are kept as such: the record that adds them moves the version. At most
    ``limit`` items are kept (all are dropped when a batch would pass it)."""

    def __init__(self, keys: Keys, limit: int = 50_000) -> None:
        self.keys = keys
        self.limit = limit
        self._version: bytes | None = None
        self._fields: dict[str, ItemFields] = {}

    async def fields(self, store: Store, item_ids: Sequence[str]) -> dict[str, ItemFields]:
        """Categories, attributes and availability of each item as of this call."""
        if not item_ids:
            return {}
        version = await store.get(self.keys.catalog_version())
        known = self._fields
        if version != self._version:
            known.clear()
            self._version = version
        missing = [item_id for item_id in dict.fromkeys(item_ids) if item_id not in known]
        if missing:
            if len(known) + len(missing) > self.limit:
                known.clear()
                missing = list(dict.fromkeys(item_ids))
            known.update(await item_fields(store, self.keys, missing, ALL_FIELDS))
        return {item_id: known[item_id] for item_id in item_ids}

    async def categories(self, store: Store, item_ids: Sequence[str]) -> dict[str, list[str]]:
        """Each item's categories (none for items missing from the catalog)."""
        found = await self.fields(store, item_ids)
        return {item_id: fields.categories for item_id, fields in found.items()}


class Availability:
    """The unavailable items, as a reader caches them: re-read only when the catalog agent
    has moved ``{p}:catalog:version`` since (every batch of items moves it).

    Read functions queue :meth:`queue` with their own reads (no extra round trip) and pass
    its answer to :meth:`settle`.
    """

    def __init__(self, keys: Keys) -> None:
        self.keys = keys
        self._version: bytes | None = None
        self._loaded = False
        self._hidden: frozenset[str] = frozenset()

    def queue(self, reads: Reads) -> None:
        reads.get(self.keys.catalog_version())

    def last_known(self) -> frozenset[str]:
        """The unavailable items as last settled (none before the first read): a guess of
        what the next read will find, for sizing reads; serve by :meth:`settle`'s answer."""
        return self._hidden

    async def settle(self, store: Store, version: bytes | None) -> frozenset[str]:
        """The unavailable items as of ``version`` (re-read when it moved)."""
        if not self._loaded or version != self._version:
            members = await store.smembers(self.keys.unavailable_items())
            self._hidden = frozenset(member.decode() for member in members)
            self._version, self._loaded = version, True
        return self._hidden

    async def hidden(self, store: Store) -> frozenset[str]:
        """The unavailable items now (one GET, plus a set read when the catalog changed)."""
        return await self.settle(store, await store.get(self.keys.catalog_version()))


# Every stored field a reader's view of an item holds (:class:`CatalogView`).
VIEW_FIELDS = (CATEGORIES, ATTRIBUTES, AVAILABLE, "created_at", "price", "title")


def queue_view(reads: Reads, keys: Keys, item_id: str) -> None:
    """Add the read of one item's :data:`VIEW_FIELDS` (answer: see :func:`parse_view`)."""
    reads.hmget(keys.item(item_id), VIEW_FIELDS)


def parse_view(row: Sequence[bytes | None], hidden: bool = False) -> CatalogView:
    """The answer of :func:`queue_view` as a view; malformed fields read as absent, and
    ``hidden`` (in the unavailable set) makes the item unavailable."""
    found = dict(zip(VIEW_FIELDS, row, strict=True))
    title = found["title"]
    return CatalogView(
        categories=tuple(stored_categories(found[CATEGORIES])),
        attributes=stored_attributes(found[ATTRIBUTES]),
        available=not hidden and found[AVAILABLE] != b"0",
        created_at_ms=_stored_number(found["created_at"], int),
        price=_stored_number(found["price"], float),
        title=title.decode(errors="replace") if title else None,
    )


def _stored_number(raw: bytes | None, kind: type[Any]) -> Any:
    if raw is None:
        return None
    try:
        return kind(float(raw))
    except ValueError:
        return None


async def item_views(
    store: Store, keys: Keys, item_ids: Sequence[str], hidden: frozenset[str]
) -> dict[str, CatalogView]:
    """Views of ``item_ids`` in one round trip (items missing from the catalog: no
    categories, no attributes, available unless ``hidden``)."""
    if not item_ids:
        return {}
    reads = Reads()
    for item_id in item_ids:
        queue_view(reads, keys, item_id)
    rows = await store.read(reads)
    return {
        item_id: parse_view(row, item_id in hidden)
        for item_id, row in zip(item_ids, rows, strict=True)
    }


async def newest_items(
    store: Store,
    keys: Keys,
    depth: int,
    since_ms: float | None = None,
    until_ms: float | None = None,
) -> list[tuple[str, int]]:
    """The ``depth`` newest catalog items as (item_id, created_at_ms), newest first; with
    bounds, only items created in ``[since_ms, until_ms]`` (so that items dated far ahead
    do not take the places of the ones in range)."""
    if since_ms is None and until_ms is None:
        rows = await store.zrange(keys.items(), 0, depth - 1, desc=True)
    else:
        low = "-inf" if since_ms is None else since_ms
        high = "+inf" if until_ms is None else until_ms
        rows = await store.zrange_by_score(keys.items(), low, high, desc=True, count=depth)
    return [
        (item_id, int(created_at))
        for member, created_at in rows
        if (item_id := decode_id(member)) is not None
    ]
