"""The lists a reader keeps between requests (``KeptLists``), whatever feature ranks them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pipeline.core.kept import KeptLists
from tests.unit.features.helpers import Clock


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


@pytest.mark.asyncio
async def test_a_waiter_whose_shared_ranking_holds_an_item_hidden_since_ranks_on_its_own() -> None:
    """A request that waited for another's ranking checks it against its own unavailable
    items: one withdrawn meanwhile is never served, the waiter ranks again."""
    lists = KeptLists(1.0, clock=Clock())
    key = ("a", None, 2, 200, 0.5)
    release = asyncio.Event()
    ranked: list[list[dict[str, Any]]] = [
        [{"item_id": "b"}, {"item_id": "c"}],
        [{"item_id": "c"}, {"item_id": "d"}],
    ]

    async def rank() -> list[dict[str, Any]]:
        answer = ranked.pop(0)
        if len(ranked) == 1:
            await release.wait()
        return answer

    first = asyncio.create_task(lists.kept_or_ranked(key, frozenset(), 2, rank))
    second = asyncio.create_task(lists.kept_or_ranked(key, frozenset({"b"}), 2, rank))
    await asyncio.sleep(0)
    release.set()
    assert [entry["item_id"] for entry in await first] == ["b", "c"]
    assert [entry["item_id"] for entry in await second] == ["c", "d"]
    assert ranked == []
