"""The related read (``read_related``): what a reader serves from the stored counts."""

from __future__ import annotations

import asyncio
from typing import Any

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


def test_kept_lists_age_out_and_never_hold_a_hidden_item() -> None:
    clock = Clock()
    lists = KeptLists(1.0, limit=2, clock=clock)
    entries = [{"item_id": "b"}, {"item_id": "c"}]
    lists.put(("a", None, 10, 200, 0.5), entries)
    assert lists.get(("a", None, 10, 200, 0.5), frozenset()) is entries
    # Another n, relation or depth is another list.
    assert lists.get(("a", None, 5, 200, 0.5), frozenset()) is None
    assert lists.get(("a", "also_bought", 10, 200, 0.5), frozenset()) is None
    assert lists.get(("a", None, 10, 200, 0.5), frozenset({"c"})) is None
    # A list that held a hidden item is gone, also once the item is back.
    assert lists.get(("a", None, 10, 200, 0.5), frozenset()) is None
    lists.put(("a", None, 10, 200, 0.5), entries)
    clock.now += 0.999
    assert lists.get(("a", None, 10, 200, 0.5), frozenset()) is entries
    clock.now += 0.001
    assert lists.get(("a", None, 10, 200, 0.5), frozenset()) is None
    # At most `limit` lists: the oldest goes first.
    for item in ("x", "y", "z"):
        lists.put((item, None, 10, 200, 0.5), entries)
    assert lists.get(("x", None, 10, 200, 0.5), frozenset()) is None
    assert lists.get(("z", None, 10, 200, 0.5), frozenset()) is entries
    # A max age of 0 keeps nothing.
    off = KeptLists(0.0, clock=clock)
    off.put(("a", None, 10, 200, 0.5), entries)
    assert off.get(("a", None, 10, 200, 0.5), frozenset()) is None


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


@pytest.mark.asyncio
async def test_requests_missing_the_same_list_share_one_ranking() -> None:
    lists = KeptLists(1.0, clock=Clock())
    key = ("a", None, 2, 200, 0.5)
    release = asyncio.Event()
    calls: list[str] = []

    async def rank() -> list[dict[str, Any]]:
        calls.append("rank")
        await release.wait()
        return [{"item_id": "b"}, {"item_id": "c"}]

    first = asyncio.create_task(lists.kept_or_ranked(key, frozenset(), 2, rank))
    second = asyncio.create_task(lists.kept_or_ranked(key, frozenset(), 2, rank))
    # A waiter cancelled meanwhile leaves the shared ranking alone.
    third = asyncio.create_task(lists.kept_or_ranked(key, frozenset(), 2, rank))
    await asyncio.sleep(0)
    third.cancel()
    release.set()
    assert await first == await second == [{"item_id": "b"}, {"item_id": "c"}]
    assert calls == ["rank"]
    assert third.cancelled()
    # Kept: the next request ranks nothing.
    assert await lists.kept_or_ranked(key, frozenset(), 2, rank) == await first
    assert calls == ["rank"]


@pytest.mark.asyncio
async def test_a_request_whose_shared_ranking_failed_ranks_on_its_own() -> None:
    lists = KeptLists(1.0, clock=Clock())
    key = ("a", None, 2, 200, 0.5)
    release = asyncio.Event()
    attempts: list[int] = []

    async def rank() -> list[dict[str, Any]]:
        attempts.append(len(attempts))
        if len(attempts) == 1:
            await release.wait()
            raise ConnectionError("redis went away")
        return [{"item_id": "b"}]

    first = asyncio.create_task(lists.kept_or_ranked(key, frozenset(), 2, rank))
    second = asyncio.create_task(lists.kept_or_ranked(key, frozenset(), 2, rank))
    await asyncio.sleep(0)
    release.set()
    with pytest.raises(ConnectionError):
        await first
    # The waiter ranked again; its list is shorter than n, so it is not kept.
    assert await second == [{"item_id": "b"}]
    assert await lists.kept_or_ranked(key, frozenset(), 2, rank) == [{"item_id": "b"}]
    assert attempts == [0, 1, 2]
