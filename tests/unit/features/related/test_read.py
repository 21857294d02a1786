"""The related read (``read_related``): what a reader serves from the stored counts."""

from __future__ import annotations

import pytest

from pipeline.core.kept import KeptLists
from pipeline.features.catalog.read import Availability
from pipeline.features.related.read import read_related
from pipeline.store.base import Writes
from pipeline.store.memory import MemoryStore
from tests.unit.features.helpers import KEYS, Clock


@pytest.mark.asyncio
async def test_stored_partners_that_break_the_id_contract_are_never_served() -> None:
    """Redis is a public contract others may write: a member that is no valid id (bytes that
    are not UTF-8, a space) is left out of the answer; valid partners keep their order, and
    an unavailable one is hidden."""
    store = MemoryStore()
    partners = {"b": 5.0, "has space": 4.0, "c": 3.0, "gone": 2.5, "d": 2.0}
    writes = Writes().zadd(KEYS.related("also_clicked", "a"), partners)
    writes.zadd(KEYS.related("also_clicked", "a"), {b"\xff\xfe": 9.0})  # type: ignore[dict-item]
    writes.sadd(KEYS.unavailable_items(), ["gone"])
    await store.apply(writes)
    found = await read_related(store, KEYS, Availability(KEYS), "a", "also_clicked", 10, 200, 0.5)
    assert [item["item_id"] for item in found] == ["b", "c", "d"]
    assert [item["score"] for item in found] == [5.0, 3.0, 2.0]


@pytest.mark.asyncio
async def test_a_kept_list_is_served_until_it_ages_and_loses_a_withdrawn_item_at_once() -> None:
    """The reader ranks an item's list once per max age: new counts show up after it, while
    an item made unavailable (the catalog moves its version) leaves the next answer."""
    store, clock = MemoryStore(), Clock()
    lists, availability = KeptLists(1.0, clock=clock), Availability(KEYS)

    async def served() -> list[str]:
        found = await read_related(store, KEYS, availability, "a", None, 2, 200, 0.5, lists)
        return [entry["item_id"] for entry in found]

    await store.apply(Writes().zadd(KEYS.related("also_clicked", "a"), {"b": 5.0}))
    # A list shorter than asked is not kept: the item's next partner shows at once.
    assert await served() == ["b"]
    await store.apply(Writes().zadd(KEYS.related("also_clicked", "a"), {"c": 3.0}))
    assert await served() == ["b", "c"]
    await store.apply(Writes().zadd(KEYS.related("also_clicked", "a"), {"d": 9.0}))
    assert await served() == ["b", "c"]  # kept: ranked less than a second ago
    clock.now += 1.0
    assert await served() == ["d", "b"]
    writes = Writes().sadd(KEYS.unavailable_items(), ["b"])
    writes.set(KEYS.catalog_version(), "2")
    await store.apply(writes)
    assert await served() == ["d", "c"]
    # Without kept lists every read ranks.
    await store.apply(Writes().zadd(KEYS.related("also_clicked", "a"), {"e": 20.0}))
    found = await read_related(store, KEYS, availability, "a", None, 2, 200, 0.5)
    assert [entry["item_id"] for entry in found] == ["e", "d"]
