"""The related read (``read_related``): what a reader serves from the stored counts."""

from __future__ import annotations

import pytest

from pipeline.features.catalog.read import Availability
from pipeline.features.related.read import read_related
from pipeline.store.base import Writes
from pipeline.store.memory import MemoryStore
from tests.unit.features.helpers import KEYS

pytestmark = pytest.mark.asyncio


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
