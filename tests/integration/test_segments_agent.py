"""The segments agent group end to end: events to users-for-item and users-for-attribute."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from pipeline.api.reader import create_reader_app
from pipeline.core.keys import Keys
from pipeline.core.settings import Settings, load_settings
from pipeline.features.registry import declared_topics
from pipeline.store.redis import connect
from pipeline.stream.kafka import apply_topics
from pipeline.tools.local import free_port
from tests.integration.helpers import (
    get_json,
    log_tail,
    pipeline_process,
    produce,
    reader_client,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

CATALOG = [
    {"item_id": "red-1", "categories": ["shirts"], "attributes": {"color": "red", "size": ["M"]}},
    {"item_id": "red-2", "categories": ["shirts"], "attributes": {"color": "red"}},
    {"item_id": "blue-1", "categories": ["shirts"], "attributes": {"color": "blue"}},
    {"item_id": "blue-2", "categories": ["shirts"], "attributes": {"color": ["blue", "navy"]}},
]


def event(n: int, kind: str, user: str, item: str, ts: int) -> dict:
    return {"event_id": f"s{n}", "type": kind, "user_id": user, "item_id": item, "timestamp": ts}


def reader_app(settings: Settings):
    return create_reader_app(settings)


def user_ids(body: dict) -> list[str]:
    return [user["user_id"] for user in body["users"]]


async def test_segments_follow_buys_clicks_and_blacklists(isolated: Settings, tmp_path: Path):
    topics = declared_topics(isolated)
    await apply_topics(isolated.kafka_bootstrap, topics.specs)
    log = tmp_path / "worker.log"
    worker = pipeline_process(isolated, ["worker", "--agents", "catalog,segments"], log)
    store = connect(isolated)
    keys = Keys(isolated.key_prefix)
    try:
        # The catalog first, so that the segments agent finds the items' attributes.
        await produce(
            isolated, topics.catalog.name, [(item["item_id"].encode(), item) for item in CATALOG]
        )

        async def catalogued() -> int:
            return sum([await store.redis.exists(keys.item(item["item_id"])) for item in CATALOG])

        try:
            await wait_for(catalogued, lambda n: n == len(CATALOG), 60, "the catalog in Redis")
        except AssertionError:
            print(log_tail(log))
            raise

        now = int(time.time() * 1000)
        # A buys red shirts; B clicks blue ones; C clicks red-2, then blacklists it.
        events = [
            event(1, "buy", "user-a", "red-1", now - 5000),
            event(2, "buy", "user-a", "red-2", now - 4000),
            event(3, "click", "user-b", "blue-1", now - 3000),
            event(4, "click", "user-b", "blue-2", now - 2000),
            event(5, "click", "user-c", "red-2", now - 1500),
            event(6, "blacklist", "user-c", "red-2", now - 1000),
        ]
        for kind in ("buy", "click", "blacklist"):
            chosen = [(e["user_id"].encode(), e) for e in events if e["type"] == kind]
            await produce(isolated, topics.for_event_type(kind), chosen)

        async with reader_client(isolated) as client:

            async def get(path: str, **params) -> dict:
                return await get_json(client, path, **params)

            async def snapshot() -> dict:
                return {
                    "red": await get("/v1/segments", attribute="color", value="red"),
                    "red-1": await get("/v1/items/red-1/segment", n=10),
                    "red-2": await get("/v1/items/red-2/segment", n=10),
                }

            def settled(s: dict) -> bool:
                red, red1, red2 = user_ids(s["red"]), user_ids(s["red-1"]), user_ids(s["red-2"])
                return (
                    red[:1] == ["user-a"]
                    and "user-c" in red  # C's click is applied ...
                    and "user-c" not in red2  # ... and so is C's blacklist
                    and "user-a" in red2
                    and "user-b" in red1
                    and red1.index("user-a") < red1.index("user-b")
                )

            try:
                state = await wait_for(snapshot, settled, 60, "segments of the red items")
            except AssertionError:
                print(log_tail(log))
                raise

            # color=red: A bought two red shirts (weight 4 each), C clicked one (weight 1).
            red = state["red"]
            assert (red["attribute"], red["value"]) == ("color", "red")
            assert user_ids(red) == ["user-a", "user-c"]
            assert [round(user["score"], 3) for user in red["users"]] == [8.0, 1.0]
            assert red["users"][0]["source"] == {
                "model": "segments",
                "attribute": "color",
                "value": "red",
            }

            # red-1: A bought it; B and C never touched it but like shirts / red things.
            red1 = state["red-1"]
            assert red1["item_id"] == "red-1"
            assert user_ids(red1)[0] == "user-a"
            assert set(user_ids(red1)) == {"user-a", "user-b", "user-c"}
            top = red1["users"][0]
            assert top["source"]["model"] == "segments"
            assert top["source"]["item_id"] == "red-1"
            assert top["source"]["direct"] == pytest.approx(4.0, rel=1e-3)
            via = {(a["attribute"], a["value"]): a["affinity"] for a in top["source"]["attributes"]}
            assert via[("color", "red")] == pytest.approx(8.0, rel=1e-3)
            assert via[("category", "shirts")] == pytest.approx(8.0, rel=1e-3)
            b = next(user for user in red1["users"] if user["user_id"] == "user-b")
            assert b["source"]["direct"] == 0.0
            assert [a["value"] for a in b["source"]["attributes"]] == ["shirts"]

            # Categories are the attribute "category"; blue-2's list value counts each element.
            shirts = await get("/v1/segments", attribute="category", value="shirts")
            assert user_ids(shirts) == ["user-a", "user-b", "user-c"]
            navy = await get("/v1/segments", attribute="color", value="navy", n=1)
            assert user_ids(navy) == ["user-b"]
            assert (await get("/v1/segments", attribute="color", value="green"))["users"] == []
            assert (await get("/v1/items/nothing/segment"))["users"] == []

            for path, params, word in [
                ("/v1/items/bad id/segment", {}, "item_id"),
                ("/v1/segments", {"attribute": "color", "value": "has space"}, "value"),
                ("/v1/segments", {"attribute": "{x}", "value": "red"}, "attribute"),
                ("/v1/segments", {"attribute": "color", "value": "red", "n": 0}, "n"),
                ("/v1/items/red-1/segment", {"n": 1001}, "n"),
                ("/v1/segments", {"attribute": "color"}, "value"),
            ]:
                response = await client.get(path, params=params)
                assert response.status_code == 422, (path, params, response.text)
                body = response.json()
                assert body["error"] == "invalid_parameter" and word in body["detail"], body
    finally:
        await store.close()
        worker.stop()


async def test_redis_down_answers_503_quickly():
    # Nothing listens on a fresh free port: every Redis call fails to connect.
    settings = load_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0", redis_timeout_s=0.2)
    app = reader_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as client,
    ):
        for path, params in [
            ("/v1/items/red-1/segment", {}),
            ("/v1/segments", {"attribute": "color", "value": "red"}),
        ]:
            started = time.monotonic()
            response = await client.get(path, params=params)
            assert response.status_code == 503, response.text
            assert response.json()["error"] == "redis_unavailable"
            assert response.json()["detail"]
            assert time.monotonic() - started < 2.0
