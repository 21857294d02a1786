"""The ranking handler's plan and ``rank_items``, on the in-memory store."""

from __future__ import annotations

import pytest

from pipeline.features.ranking.agent import RankingHandler
from pipeline.features.ranking.config import ranking_config
from pipeline.features.ranking.read import rank_items
from pipeline.store.memory import MemoryStore
from tests.unit.features.helpers import KEYS, T0_MS, run, settings

pytestmark = pytest.mark.asyncio


def shown(n: int, user: str, items: list[str], **context: object) -> dict:
    return {
        "event_id": f"s{n}",
        "type": "impression",
        "user_id": user,
        "items": items,
        "timestamp": T0_MS + n,
        "context": {"device": "mobile", **context},
    }


def clicked(n: int, user: str, item: str, position: int) -> dict:
    return {
        "event_id": f"c{n}",
        "type": "click",
        "user_id": user,
        "item_id": item,
        "timestamp": T0_MS + n,
        "context": {"device": "mobile", "position": position},
    }


async def test_what_a_user_clicks_ranks_first_for_that_user() -> None:
    store = MemoryStore()
    handler = RankingHandler(settings(), KEYS)
    events: list[dict] = []
    for n in range(30):
        events.append(shown(2 * n, "u1", ["a", "b", "c"]))
        events.append(clicked(2 * n + 1, "u1", "c", 2))
    await run(handler, store, events)
    config = ranking_config(settings())
    ranked = await rank_items(
        store, KEYS, "u1", ["a", "b", "c"], {"device": "mobile"}, config, T0_MS
    )
    assert ranked[0]["item_id"] == "c"
    assert ranked[0]["score"] > 0.5 > ranked[1]["score"] >= ranked[2]["score"]
    # Another user never clicked anything: nothing personal lifts c for them as much.
    other = await rank_items(
        store, KEYS, "u2", ["a", "b", "c"], {"device": "mobile"}, config, T0_MS
    )
    assert other[0]["score"] < ranked[0]["score"]
    assert ranked[0]["source"] == {"model": "ranking"}
    # Weights are increments: a second batch adds to what the first stored.
    weights = len(await store.hgetall(KEYS.rank_weights()))
    await run(handler, store, [shown(100, "u2", ["d"])])
    assert len(await store.hgetall(KEYS.rank_weights())) > weights


async def test_events_that_teach_nothing_write_nothing() -> None:
    store = MemoryStore()
    handler = RankingHandler(settings(), KEYS)
    buy = {"event_id": "b1", "type": "buy", "user_id": "u", "item_id": "a", "timestamp": T0_MS}
    await run(handler, store, [buy])
    assert await store.scan("*") == []
