"""The catalog may arrive after the events (another topic): trending per category and the
attribute segments end the same whether an item's record came first, last, or changed in
between (``trending/state.py``, ``segments/state.py``, moved by the catalog agent)."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.features.catalog.agent import CatalogHandler
from pipeline.features.segments.agent import SegmentsHandler
from pipeline.features.trending.agent import TrendingHandler
from pipeline.store.memory import MemoryStore
from tests.unit.features.helpers import KEYS, T0_MS, run, settings, store_at
from tests.unit.features.test_event_time import state

pytestmark = pytest.mark.asyncio

OLD = [
    {"item_id": "tv", "categories": ["tech", "home"], "attributes": {"brand": "acme"}},
    {"item_id": "lamp", "categories": ["home"], "attributes": {"brand": ["acme", "lux"]}},
]
NEW = [
    {"item_id": "tv", "categories": ["tech", "video"], "attributes": {"brand": "zen"}},
    {"item_id": "lamp", "categories": ["home"], "attributes": {"brand": "lux", "size": 2}},
    {"item_id": "radio", "categories": ["tech"]},
]


def events() -> list[dict[str, Any]]:
    found = []
    for n, (kind, user, item) in enumerate(
        [
            ("click", "u1", "tv"),
            ("buy", "u1", "tv"),
            ("click", "u2", "lamp"),
            ("click", "u2", "tv"),
            ("basket", "u3", "lamp"),
            ("click", "u3", "radio"),
            ("blacklist", "u4", "radio"),
            ("click", "u4", "lamp"),
        ]
    ):
        found.append(
            {
                "event_id": f"e{n}",
                "type": kind,
                "user_id": user,
                "item_id": item,
                "timestamp": T0_MS + n * 600_000,
            }
        )
    return found


async def apply(steps: list[tuple[str, list[dict[str, Any]]]]) -> MemoryStore:
    store = store_at(T0_MS)
    config = settings()
    catalog = CatalogHandler(KEYS, config)
    catalog.clock = store.clock
    trending = TrendingHandler(config, KEYS)
    segments = SegmentsHandler(config, KEYS)
    for what, values in steps:
        if what == "catalog":
            await run(catalog, store, values)
        else:
            for handler in (trending, segments):
                await run(handler, store, values)
    return store


def counters(store: MemoryStore) -> dict[str, Any]:
    """Trending, segments and the users' segment indexes (the catalog's own keys differ in
    its version counter only)."""
    return {
        key: value
        for key, value in state(store).items()
        if ":trending:" in key or ":segment" in key
    }


@pytest.mark.parametrize(
    "steps",
    [
        [("events", events()), ("catalog", NEW)],
        [("catalog", OLD), ("events", events()), ("catalog", NEW)],
        [("events", events()[:4]), ("catalog", OLD), ("events", events()[4:]), ("catalog", NEW)],
        [("catalog", OLD), ("catalog", NEW), ("events", events())],
    ],
    ids=["catalog last", "catalog changed after", "catalog in between", "catalog twice first"],
)
async def test_trending_and_segments_follow_the_current_catalog(steps) -> None:
    expected = counters(await apply([("catalog", NEW), ("events", events())]))
    # The comparison covers categories and attributes the items gained and lost.
    assert any(key.endswith(":cat:video") for key in expected)
    assert any(":segment:attr:size:2:" in key for key in expected)
    actual = counters(await apply(steps))
    segments = {key for key in expected if ":user:" not in key}
    assert {key for key in actual if ":user:" not in key} == segments
    for key in segments:
        assert actual[key] == pytest.approx(expected[key], rel=1e-9), key
    # A user's index may list more segments than the user is in (those an item lost, or a
    # generation more): a forget then removes the user from each, which is all it is for.
    for key in set(expected) - segments:
        assert set(actual[key]) >= set(expected[key]), key
    # What the items lost is gone, not left at zero.
    assert not any(key.endswith(":cat:home") and b"tv" in actual[key] for key in actual)
    assert not any(":segment:attr:brand:acme:" in key for key in actual)
