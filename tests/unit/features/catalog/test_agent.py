"""The catalog handler's plan and the catalog reads, on the in-memory store."""

from __future__ import annotations

import pytest

from pipeline.features.catalog.agent import CatalogHandler
from pipeline.features.catalog.read import (
    ATTRIBUTES,
    AVAILABLE,
    CATEGORIES,
    Availability,
    CatalogCache,
    item_fields,
)
from pipeline.store.base import Writes
from pipeline.store.memory import MemoryStore
from tests.unit.features.helpers import KEYS, run

pytestmark = pytest.mark.asyncio


async def test_the_latest_version_of_an_item_replaces_the_earlier_one_whole() -> None:
    store = MemoryStore()
    handler = CatalogHandler(KEYS)
    first = {"item_id": "i1", "categories": ["shoes"], "attributes": {"color": "red"}, "price": 5}
    second = {"item_id": "i1", "categories": ["sale"], "available": False}
    await run(handler, store, [first, {"item_id": "i2", "created_at": 1_700_000_000_000}, second])
    fields = await item_fields(
        store, KEYS, ["i1", "i2", "nope"], (CATEGORIES, ATTRIBUTES, AVAILABLE)
    )
    assert fields["i1"].categories == ["sale"]
    # Replaced whole: the first version's attributes and price are gone.
    assert fields["i1"].attributes == {}
    assert await store.hget(KEYS.item("i1"), "price") is None
    assert fields["i1"].available is False
    assert fields["i2"].available is True
    # Unknown items have nothing and count as available (events may precede the catalog).
    assert fields["nope"].categories == [] and fields["nope"].available is True
    assert await Availability(KEYS).hidden(store) == {"i1"}
    assert await store.get(KEYS.catalog_version()) == b"1"
    assert await store.zrange(KEYS.items(), 0, -1) == [(b"i1", 0.0), (b"i2", 1.7e12)]


async def test_decode_rejects_bad_records_with_a_reason() -> None:
    handler = CatalogHandler(KEYS)
    items, rejections = handler.decode(b'{"categories": []}')
    assert items == [] and rejections[0].reason == "item_id is required"
    items, rejections = handler.decode(None)
    assert items == [] and "empty" in rejections[0].reason


async def test_malformed_stored_fields_read_as_absent() -> None:
    store = MemoryStore()
    writes = Writes().hset(KEYS.item("x"), {"categories": "{not json", "attributes": "[1]"})
    writes.hset(KEYS.item("y"), {"categories": '["ok", "bad id", 3]'})
    await store.apply(writes)
    assert await CatalogCache(KEYS).categories(store, ["x", "y"]) == {"x": [], "y": ["ok"]}
    fields = await item_fields(store, KEYS, ["x"], (ATTRIBUTES,))
    assert fields["x"].attributes == {}


async def test_workers_cache_item_fields_until_the_catalog_moves() -> None:
    """A handler's cache asks Redis only for items it has not met since the catalog last
    moved; an item that arrives after its events (no fields yet) is read again once its
    record moved the version; past the limit the cache starts over."""
    store = MemoryStore()
    handler = CatalogHandler(KEYS)
    await run(handler, store, [{"item_id": "a", "categories": ["shoes"]}])
    cache = CatalogCache(KEYS, limit=3)
    found = await cache.fields(store, ["a", "late", "a"])
    assert (found["a"].categories, found["late"].categories) == (["shoes"], [])
    # Written behind the agent's back: cached until the version moves.
    await store.apply(Writes().hset(KEYS.item("a"), {"categories": '["sale"]'}))
    assert (await cache.categories(store, ["a"]))["a"] == ["shoes"]
    # The late item's record arrives: the version moves, everything is read again.
    await run(handler, store, [{"item_id": "late", "categories": ["books"], "available": False}])
    found = await cache.fields(store, ["late", "a"])
    assert found["late"].categories == ["books"] and not found["late"].available
    assert found["a"].categories == ["sale"]
    # Past the limit (3): only this call's items are kept, read afresh.
    await store.apply(Writes().hset(KEYS.item("a"), {"categories": '["gone"]'}))
    found = await cache.fields(store, ["b", "c"])
    assert set(found) == {"b", "c"}
    assert (await cache.categories(store, ["a"]))["a"] == ["gone"]
    assert await cache.fields(store, []) == {}


async def test_readers_cache_availability_until_the_catalog_moves() -> None:
    store = MemoryStore()
    handler = CatalogHandler(KEYS)
    availability = Availability(KEYS)
    await run(handler, store, [{"item_id": "a", "available": False}])
    assert await availability.hidden(store) == {"a"}
    # Written behind the agent's back: the cache does not see it (the version did not move).
    await store.apply(Writes().sadd(KEYS.unavailable_items(), ["b"]))
    assert await availability.hidden(store) == {"a"}
    # The next catalog batch moves the version: the cache re-reads.
    await run(handler, store, [{"item_id": "a", "available": True}])
    assert await availability.hidden(store) == {"b"}
