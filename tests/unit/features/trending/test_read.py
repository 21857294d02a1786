"""Trending lists kept by a reader between requests (``read_trending`` with ``lists``)."""

from __future__ import annotations

import math

import pytest

from pipeline.core.decay import generation, landmark_ms
from pipeline.core.kept import KeptLists
from pipeline.features.catalog.agent import CatalogHandler
from pipeline.features.catalog.read import Availability
from pipeline.features.trending.agent import TrendingHandler
from pipeline.features.trending.read import read_trending
from pipeline.store.memory import MemoryStore
from tests.unit.features.helpers import (
    KEYS,
    T0_MS,
    Clock,
    count_zrange_rows,
    run,
    settings,
    store_at,
)

pytestmark = pytest.mark.asyncio
HOUR_S = 3600.0


def click(n: int, item: str, user: str = "u") -> dict:
    return {
        "event_id": f"e{n}",
        "type": "click",
        "user_id": user,
        "item_id": item,
        "timestamp": T0_MS,
    }


async def _three_items(store: MemoryStore) -> None:
    await run(
        TrendingHandler(settings(), KEYS),
        store,
        [click(1, "a"), click(2, "a", "v"), click(3, "a", "w"), click(4, "b"), click(5, "b", "v")]
        + [click(6, "c")],
    )


async def _read(
    store: MemoryStore, availability: Availability, lists: KeptLists, n: int, now_ms: int
) -> list[dict]:
    return await read_trending(
        store, KEYS, availability, "clicks", "1h", HOUR_S, None, n, now_ms, lists
    )


async def test_a_kept_list_is_served_again_with_scores_decayed_to_each_request() -> None:
    store, clock = store_at(T0_MS), Clock()
    await _three_items(store)
    lists, availability = KeptLists(1.0, clock=clock), Availability(KEYS)
    first = await _read(store, availability, lists, 2, T0_MS)
    assert [item["item_id"] for item in first] == ["a", "b"]
    pages = count_zrange_rows(store)
    # New clicks make b the first; a kept list does not show them before it is a second old.
    await run(
        TrendingHandler(settings(), KEYS), store, [click(10 + k, "b", f"x{k}") for k in range(5)]
    )
    clock.now += 0.5
    again = await _read(store, availability, lists, 2, T0_MS + 1000)
    assert pages == []
    assert [item["item_id"] for item in again] == ["a", "b"]
    # Decayed to the request's own time: a second later, by 2 ** (-1 s / half-life).
    assert again[0]["score"] < first[0]["score"]
    assert math.isclose(again[0]["score"], first[0]["score"] * 2 ** (-1 / HOUR_S), rel_tol=1e-12)
    clock.now += 0.5
    later = await _read(store, availability, lists, 2, T0_MS + 1000)
    assert pages == [2]
    assert [item["item_id"] for item in later] == ["b", "a"]


async def test_an_item_withdrawn_leaves_a_kept_list_at_once() -> None:
    store = store_at(T0_MS)
    await _three_items(store)
    lists, availability = KeptLists(60.0, clock=Clock()), Availability(KEYS)
    pages = count_zrange_rows(store)
    assert [i["item_id"] for i in await _read(store, availability, lists, 2, T0_MS)] == ["a", "b"]
    await run(CatalogHandler(KEYS), store, [{"item_id": "a", "available": False}])
    assert [i["item_id"] for i in await _read(store, availability, lists, 2, T0_MS)] == ["b", "c"]
    # Ranked again with the unavailable item known: a first page of n + 1.
    assert pages == [2, 3]


async def test_a_short_list_is_read_at_every_request_and_answers_are_the_callers() -> None:
    store = store_at(T0_MS)
    await _three_items(store)
    lists, availability = KeptLists(60.0, clock=Clock()), Availability(KEYS)
    pages = count_zrange_rows(store)
    short = await _read(store, availability, lists, 5, T0_MS)
    short[0]["source"]["stage"] = "fallback"  # a caller changing its answer in place
    again = await _read(store, availability, lists, 5, T0_MS)
    assert [item["item_id"] for item in again] == ["a", "b", "c"]
    assert pages == [5, 5]
    kept = await _read(store, availability, lists, 3, T0_MS)
    kept[0]["item_id"] = "changed"
    kept[0]["source"]["stage"] = "fallback"
    served = await _read(store, availability, lists, 3, T0_MS)
    assert pages == [5, 5, 3]
    assert served[0]["item_id"] == "a" and "stage" not in served[0]["source"]


async def test_a_new_generation_is_read_afresh_and_decayed_from_its_own_landmark() -> None:
    """A list kept at the last millisecond of a generation is not served in the next one:
    the next generation's set (which holds the same events, forward-weighted from its own
    landmark) is read, and its scores decay from that landmark."""
    gen = generation(T0_MS, HOUR_S)
    boundary = int(landmark_ms(gen + 1, HOUR_S))
    store, clock = store_at(boundary), Clock()
    events = [
        {"event_id": f"e{n}", "type": "click", "user_id": f"u{n}", "item_id": item}
        | {"timestamp": boundary - 1}
        for n, item in enumerate(["a", "a", "a", "b", "b"])
    ]
    await run(TrendingHandler(settings(), KEYS), store, events)
    lists, availability = KeptLists(60.0, clock=clock), Availability(KEYS)
    pages = count_zrange_rows(store)
    before = await _read(store, availability, lists, 2, boundary - 1)
    clock.now += 0.1
    after = await _read(store, availability, lists, 2, boundary)
    assert pages == [2, 2]
    assert [item["item_id"] for item in after] == ["a", "b"] == [i["item_id"] for i in before]
    assert math.isclose(before[0]["score"], 3.0, rel_tol=1e-9)
    assert math.isclose(after[0]["score"], 3.0, rel_tol=1e-6)
