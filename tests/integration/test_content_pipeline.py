"""Cold start from content, end to end through Kafka: items posted to the collector get
content neighbours from their text (``similar_content``) and, with content on, a place in
the for-you list of a user whose items their text is like, before anyone interacts with
them; user records posted to ``POST /v1/users`` are stored, then erased by ``DELETE
/v1/users/{user_id}``. One worker runs the catalog, content, users and personal groups."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from pipeline.api.collector import create_collector_app
from pipeline.core.keys import Keys
from pipeline.core.settings import Settings
from pipeline.features.registry import declared_topics
from pipeline.features.users.read import user_attributes
from pipeline.store.redis import RedisStore, connect
from pipeline.stream.kafka import apply_topics
from tests.integration.helpers import (
    get_json,
    log_tail,
    pipeline_process,
    reader_client,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

ITEMS = [
    {"item_id": "shoes/trail-1", "title": "Waterproof trail running shoe", "categories": ["shoes"]},
    {"item_id": "hat-1", "title": "Merino wool beanie", "categories": ["hats"]},
    {
        "item_id": "jacket-1",
        "title": "Rain jacket",
        "attributes": {"description": "light waterproof shell for hiking"},
    },
    {"item_id": "mug-1", "title": "Enamel camping mug"},
]
NEWCOMER = {"item_id": "shoes/trail-2", "title": "Trail running shoe, waterproof"}


async def post_click(collector: httpx.AsyncClient, user: str, item: str, n: int) -> None:
    event = {
        "event_id": f"{user}-{n}",
        "type": "click",
        "user_id": user,
        "item_id": item,
        "timestamp": int(time.time() * 1000),
    }
    response = await collector.post("/v1/events", json=event)
    assert response.status_code == 200, response.text


async def foryou(reader: httpx.AsyncClient, user: str) -> list[str]:
    response = await reader.get(f"/v1/users/{user}/recommendations", params={"n": 20})
    if response.status_code != 200:
        return []
    return [entry["item_id"] for entry in response.json()["items"]]


@asynccontextmanager
async def collector_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_collector_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://c") as client,
    ):
        yield client


@asynccontextmanager
async def worker_of(
    settings: Settings, agents: str, logs: Path
) -> AsyncIterator[tuple[RedisStore, Keys]]:
    """A worker of ``agents`` on ``settings`` (topics created; its log in ``logs``), and a
    store on its Redis; an assertion that fails inside prints the worker's log."""
    log = logs / "worker.log"
    await apply_topics(settings.kafka_bootstrap, declared_topics(settings).specs)
    worker = pipeline_process(settings, ["worker", "--agents", agents], log)
    store = connect(settings)
    try:
        yield store, Keys(settings.key_prefix)
    except AssertionError:
        print(log_tail(log))
        raise
    finally:
        await store.close()
        worker.stop()


async def test_new_items_get_content_neighbours_and_users_are_data(
    isolated: Settings, tmp_path: Path
) -> None:
    settings = isolated.model_copy(update={"content_taste_weight": 1.0})
    async with (
        worker_of(settings, "catalog,content,users,personal", tmp_path) as (store, keys),
        collector_client(settings) as collector,
        reader_client(settings) as reader,
    ):
        response = await collector.post("/v1/items", json=ITEMS)
        assert response.status_code == 200 and response.json()["accepted"] == 4

        async def similar(item_id: str) -> list[str]:
            body: dict[str, Any] = await get_json(
                reader, f"/v1/items/{item_id}/related", relation="similar_content"
            )
            return [entry["item_id"] for entry in body["items"]]

        # The jacket's description shares "waterproof" with the first shoe.
        await wait_for(
            lambda: similar("jacket-1"),
            lambda ids: ids == ["shoes/trail-1"],
            60,
            "the jacket's content neighbours",
        )
        # A shopper looks at the trail shoe; their list exists.
        shopper = "shop/u2"
        await post_click(collector, shopper, "shoes/trail-1", 1)
        await wait_for(lambda: foryou(reader, shopper), bool, 30, "the shopper's for-you list")
        # A new item: nobody has seen it; its text finds its closest item at once.
        newcomer = {**NEWCOMER, "created_at": int(time.time() * 1000)}
        response = await collector.post("/v1/items", json=newcomer)
        assert response.status_code == 200
        found = await wait_for(
            lambda: similar("shoes/trail-2"),
            lambda ids: bool(ids),
            20,
            "the newcomer's content neighbours",
        )
        assert found[0] == "shoes/trail-1"
        assert (await similar("shoes/trail-1"))[0] == "shoes/trail-2"
        body = await get_json(
            reader, "/v1/items/shoes/trail-2/related", relation="similar_content", n=1
        )
        assert body["items"][0]["source"]["model"] == "content"
        # With no further event, the worker recomputes the recently active shopper's
        # list when the new shoe joins: it is in it, ahead of the items unlike what
        # they looked at; nobody touched it.
        listed = await wait_for(
            lambda: foryou(reader, shopper),
            lambda ids: "shoes/trail-2" in ids,
            30,
            "the new shoe in the shopper's list",
        )
        assert listed.index("shoes/trail-2") < listed.index("mug-1")
        assert listed.index("shoes/trail-2") < listed.index("hat-1")

        # Users as data: stored, replaced, then erased by a privacy request.
        user = {"user_id": "shop/u1", "attributes": {"country": "DE", "tier": "gold"}}
        assert (await collector.post("/v1/users", json=user)).status_code == 200
        await wait_for(
            lambda: user_attributes(store, keys, "shop/u1"),
            lambda found: found == user["attributes"],
            20,
            "the user's attributes",
        )
        assert (await collector.delete("/v1/users/shop/u1")).status_code == 202
        await wait_for(
            lambda: user_attributes(store, keys, "shop/u1"),
            lambda found: found == {},
            20,
            "the forget",
        )


async def test_words_join_the_factor_model_through_the_worker(
    isolated: Settings, tmp_path: Path
) -> None:
    """Words in the factor model (``content_factor_rate``): a click on an item with text
    writes the rows of its words to ``{p}:mf:words``, and a new item with text joins the
    shopper's list (the factor model) before anyone touches it."""
    settings = isolated.model_copy(update={"content_factor_rate": 0.2})
    async with (
        worker_of(settings, "catalog,content,personal", tmp_path) as (store, keys),
        collector_client(settings) as collector,
        reader_client(settings) as reader,
    ):
        assert (await collector.post("/v1/items", json=ITEMS)).status_code == 200
        vector = await wait_for(
            lambda: store.get(keys.content_vector("shoes/trail-1")),
            bool,
            60,
            "the trail shoe's content vector",
        )
        shopper = "shop/u3"
        for n in range(3):
            await post_click(collector, shopper, "shoes/trail-1", n)
        rows = await wait_for(lambda: store.hgetall(keys.mf_words()), bool, 30, "the words' rows")
        # Rows of [bias, factors...] for exactly the buckets of the shoe's text.
        buckets = np.flatnonzero(np.frombuffer(vector, dtype="<f4"))
        assert sorted(int(b) for b in rows) == buckets.tolist()
        assert {len(row) for row in rows.values()} == {4 * (settings.mf_factors + 1)}
        await wait_for(lambda: foryou(reader, shopper), bool, 30, "the shopper's list")
        newcomer = {**NEWCOMER, "created_at": int(time.time() * 1000)}
        assert (await collector.post("/v1/items", json=newcomer)).status_code == 200
        await wait_for(
            lambda: foryou(reader, shopper),
            lambda ids: "shoes/trail-2" in ids,
            30,
            "the new shoe in the shopper's list",
        )


async def test_the_freshness_prior_learns_through_the_worker(
    isolated: Settings, tmp_path: Path
) -> None:
    """The freshness prior (``freshness_rate``): clicks on items published seconds ago and
    on items published a year ago teach the prior in ``{p}:mf:freshness`` that fresh items are
    clicked more (each click draws negatives from every item met)."""
    settings = isolated.model_copy(update={"freshness_rate": 0.2})
    now_ms = int(time.time() * 1000)
    year_ms = 365 * 86_400_000
    old = [{"item_id": f"old-{n}", "created_at": now_ms - year_ms} for n in range(4)]
    fresh = [{"item_id": f"fresh-{n}", "created_at": now_ms} for n in range(2)]
    names = [item["item_id"] for item in old + fresh]
    async with (
        worker_of(settings, "catalog,personal", tmp_path) as (store, keys),
        collector_client(settings) as collector,
    ):
        assert (await collector.post("/v1/items", json=old + fresh)).status_code == 200
        await wait_for(
            lambda: store.zmscore(keys.items(), names),
            lambda scores: None not in scores,
            60,
            "the catalog's creation times",
        )
        for n, item in enumerate(names[:4]):
            await post_click(collector, "reader/0", item, n)
        for user in range(4):
            for n, item in enumerate(names[4:]):
                await post_click(collector, f"reader/{user + 1}", item, 10 + n)

        async def learned() -> bool:
            last = [("reader/0", "old-3")] + [(f"reader/{u}", "fresh-1") for u in (1, 2, 3, 4)]
            for user, item in last:
                history = await store.get(keys.user_history(user))
                if history is None or item.encode() not in history:
                    return False
            return True

        # The prior is written with the users' histories, in the same transaction.
        await wait_for(learned, bool, 60, "every click learned")
        stored = await store.hget(keys.mf_freshness(), "bias")
        assert stored is not None and len(stored) == 4 * 32
        prior = np.frombuffer(stored, dtype="<f4")
        year_bucket = int(np.log2(year_ms / 1000 + 1))
        nonzero = np.flatnonzero(prior)
        fresh_buckets = nonzero[nonzero < 12]
        assert year_bucket in nonzero and len(fresh_buckets)
        assert prior[fresh_buckets].min() > prior[year_bucket]
