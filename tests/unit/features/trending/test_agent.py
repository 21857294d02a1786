"""The trending handler's plan and ``read_trending``, on the in-memory store."""

from __future__ import annotations

import math

import pytest

from pipeline.core.decay import generation
from pipeline.features.catalog.agent import CatalogHandler
from pipeline.features.catalog.read import Availability
from pipeline.features.trending.agent import TrendingHandler
from pipeline.features.trending.read import MAX_PAGES, page_sizes, read_trending
from pipeline.store.base import Writes
from tests.unit.features.helpers import (
    KEYS,
    T0_MS,
    count_zrange_rows,
    run,
    settings,
    store_at,
)

pytestmark = pytest.mark.asyncio
HOUR_S = 3600.0


def click(n: int, item: str, user: str = "u", minutes_ago: float = 0.0, **fields: object) -> dict:
    return {
        "event_id": f"e{n}",
        "type": fields.pop("type", "click"),
        "user_id": user,
        "item_id": item,
        "timestamp": int(T0_MS - minutes_ago * 60_000),
        **fields,
    }


async def test_clicks_rank_items_by_decayed_count_with_categories() -> None:
    store = store_at(T0_MS)
    catalog = CatalogHandler(KEYS)
    await run(catalog, store, [{"item_id": "a", "categories": ["shoes"]}, {"item_id": "b"}])
    handler = TrendingHandler(settings(), KEYS)
    events = [click(1, "a"), click(2, "a", "v"), click(3, "b"), click(4, "c", minutes_ago=120)]
    await run(handler, store, events)
    items = await read_trending(
        store, KEYS, Availability(KEYS), "clicks", "1h", HOUR_S, None, 10, T0_MS
    )
    assert [item["item_id"] for item in items] == ["a", "b", "c"]
    assert math.isclose(items[0]["score"], 2.0, rel_tol=1e-9)
    # Two hours old with a one-hour half-life: a quarter.
    assert math.isclose(items[2]["score"], 0.25, rel_tol=1e-9)
    assert items[0]["source"] == {
        "model": "trending",
        "kind": "clicks",
        "window": "1h",
        "category": None,
    }
    shoes = await read_trending(
        store, KEYS, Availability(KEYS), "clicks", "1h", HOUR_S, "shoes", 10, T0_MS
    )
    assert [item["item_id"] for item in shoes] == ["a"]


async def test_conversions_count_by_weight_and_low_ratings_count_nothing() -> None:
    store = store_at(T0_MS)
    handler = TrendingHandler(settings(), KEYS)
    events = [
        click(1, "x", type="buy"),
        click(2, "y", type="rate", value=5),
        click(3, "z", type="rate", value=2),
        click(4, "w", type="basket"),
    ]
    await run(handler, store, events)
    items = await read_trending(
        store, KEYS, Availability(KEYS), "conversions", "1d", 86400.0, None, 10, T0_MS
    )
    weights = settings().event_weights
    assert {item["item_id"]: round(item["score"], 9) for item in items} == {
        "x": weights["buy"],
        "w": weights["basket"],
        "y": weights["rate"],
    }


async def test_unavailable_items_are_left_out_and_the_list_stays_full() -> None:
    store = store_at(T0_MS)
    await run(
        CatalogHandler(KEYS), store, [{"item_id": f"i{n}", "available": False} for n in range(30)]
    )
    handler = TrendingHandler(settings(), KEYS)
    # 30 unavailable items outrank 3 available ones: the reader pages past them.
    events = [click(n * 10 + k, f"i{n}", f"u{k}") for n in range(30) for k in range(3)]
    events += [click(1000 + n, f"ok{n}") for n in range(3)]
    await run(handler, store, events)
    items = await read_trending(
        store, KEYS, Availability(KEYS), "clicks", "1h", HOUR_S, None, 3, T0_MS
    )
    assert sorted(item["item_id"] for item in items) == ["ok0", "ok1", "ok2"]


async def test_a_reader_that_knows_items_withdrawn_reads_past_them_in_its_first_page() -> None:
    store = store_at(T0_MS)
    await run(
        CatalogHandler(KEYS), store, [{"item_id": f"i{n}", "available": False} for n in range(5)]
    )
    await run(TrendingHandler(settings(), KEYS), store, _clicks_ranking_before("ok", 5, 3))
    availability = Availability(KEYS)
    await availability.hidden(store)
    pages = count_zrange_rows(store)
    items = await read_trending(store, KEYS, availability, "clicks", "1h", HOUR_S, None, 3, T0_MS)
    assert sorted(item["item_id"] for item in items) == ["ok0", "ok1", "ok2"]
    assert pages == [8]  # n + the five it knew unavailable, in the first round trip


async def test_malformed_members_are_never_served_and_the_list_stays_full() -> None:
    store = store_at(T0_MS)
    await run(TrendingHandler(settings(), KEYS), store, [click(n, f"ok{n}") for n in range(3)])
    key = KEYS.trending("clicks", "1h", generation(T0_MS, HOUR_S), None)
    # Redis is a public contract: others may write members that are not ids.
    await store.apply(Writes().zadd(key, {"not an id": 50.0, "x" * 200: 40.0}))
    items = await read_trending(
        store, KEYS, Availability(KEYS), "clicks", "1h", HOUR_S, None, 3, T0_MS
    )
    assert sorted(item["item_id"] for item in items) == ["ok0", "ok1", "ok2"]


async def test_paging_past_unavailable_items_is_bounded() -> None:
    store = store_at(T0_MS)
    await run(
        CatalogHandler(KEYS), store, [{"item_id": f"i{n}", "available": False} for n in range(200)]
    )
    await run(TrendingHandler(settings(), KEYS), store, _clicks_ranking_before("ok", 200, 1))
    pages = count_zrange_rows(store)
    items = await read_trending(
        store, KEYS, Availability(KEYS), "clicks", "1h", HOUR_S, None, 2, T0_MS
    )
    # A first page of n, then pages of 2n + 20, MAX_PAGES in all: 50 candidates, all
    # unavailable.
    assert items == []
    assert pages == [2, 24, 24]
    assert MAX_PAGES == 3


async def test_a_first_page_grows_with_the_items_known_unavailable_to_a_later_pages_size() -> None:
    assert page_sizes(10, 0) == (10, 40)
    assert page_sizes(10, 7) == (17, 40)
    assert page_sizes(10, 5000) == (40, 40)


def _clicks_ranking_before(prefix: str, hidden: int, available: int) -> list[dict]:
    """Clicks that rank items i0..i{hidden-1} (three clicks each) above {prefix}0.. (one each)."""
    events = [click(n * 10 + k, f"i{n}", f"u{k}") for n in range(hidden) for k in range(3)]
    return events + [click(100_000 + n, f"{prefix}{n}") for n in range(available)]


async def test_sets_are_capped_and_expire_with_their_generation() -> None:
    store = store_at(T0_MS)
    handler = TrendingHandler(settings(trending_max_items=10), KEYS)
    await run(handler, store, [click(n, f"i{n:02d}", f"u{n}") for n in range(25)])
    gen = generation(T0_MS, HOUR_S)
    key = KEYS.trending("clicks", "1h", gen, None)
    assert len(await store.zrange(key, 0, -1)) == 10
    assert await store.expire_time(key) > T0_MS / 1000
