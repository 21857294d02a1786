"""Impressions and clicks through Kafka teach the click model; the reader ranks with it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from pipeline.api.reader import create_reader_app
from pipeline.core.items import Item
from pipeline.core.keys import Keys
from pipeline.core.settings import Settings
from pipeline.features.catalog.model import item_hash
from pipeline.features.ranking.config import ranking_config
from pipeline.features.registry import declared_topics
from pipeline.store.base import Writes
from pipeline.store.redis import connect
from pipeline.stream.fence import applied_offsets
from pipeline.stream.kafka import apply_topics
from pipeline.tools.local import free_port
from tests.integration.helpers import log_tail, pipeline_process, produce, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

ITEMS = [f"a{k}" for k in range(6)]
# a0-a2 are shoes, a3-a5 hats.
CATEGORIES = {item: ["shoes" if k < 3 else "hats"] for k, item in enumerate(ITEMS)}


@asynccontextmanager
async def reader(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_reader_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://reader") as c,
    ):
        yield c


def events(rounds: int, now: int) -> tuple[list[dict], list[dict]]:
    """Alice and bob see a0-a5 in that order each round; alice clicks a3 and a5, bob a0."""
    impressions, clicks = [], []
    context = {"device": "web", "page": "home"}
    for n in range(rounds):
        for user, clicked in (("alice", ["a3", "a5"]), ("bob", ["a0"])):
            impressions.append(
                {
                    "event_id": f"imp-{user}-{n}",
                    "type": "impression",
                    "user_id": user,
                    "items": ITEMS,
                    "timestamp": now,
                    "context": context,
                }
            )
            for item in clicked:
                clicks.append(
                    {
                        "event_id": f"clk-{user}-{n}-{item}",
                        "type": "click",
                        "user_id": user,
                        "item_id": item,
                        "timestamp": now,
                        "context": {**context, "position": ITEMS.index(item)},
                    }
                )
    return impressions, clicks


async def test_clicked_items_rank_first_for_the_user_who_clicked(
    isolated: Settings, tmp_path: Path
):
    topics = declared_topics(isolated)
    await apply_topics(isolated.kafka_bootstrap, topics.specs)
    keys = Keys(isolated.key_prefix)
    store = connect(isolated)
    # The catalog as the catalog agent writes it (that agent is not under test here).
    for item_id, categories in CATEGORIES.items():
        await store.apply(
            Writes().hset(keys.item(item_id), item_hash(Item(item_id, tuple(categories))))
        )

    impressions, clicks = events(20, int(time.time() * 1000))
    await produce(
        isolated,
        topics.for_event_type("impression"),
        [(e["user_id"].encode(), e) for e in impressions],
    )
    await produce(
        isolated, topics.for_event_type("click"), [(e["user_id"].encode(), e) for e in clicks]
    )
    produced = len(impressions) + len(clicks)

    worker = pipeline_process(isolated, ["worker", "--agents", "ranking"], tmp_path / "w.log")
    try:
        async with reader(isolated) as client:

            async def rank(user: str) -> list[str]:
                response = await client.post(
                    f"/v1/users/{user}/rank",
                    json={"items": ITEMS, "context": {"device": "web", "page": "home"}},
                )
                assert response.status_code == 200, response.text
                body = response.json()
                assert body["user_id"] == user
                assert all(item["source"] == {"model": "ranking"} for item in body["items"])
                scores = [item["score"] for item in body["items"]]
                assert scores == sorted(scores, reverse=True)
                return [item["item_id"] for item in body["items"]]

            async def state() -> tuple[int, list[str], list[str]]:
                fences = await applied_offsets(store, keys, "ranking")
                applied = sum(offset + 1 for offset in fences.values())
                return applied, await rank("alice"), await rank("bob")

            try:
                applied, alice, bob = await wait_for(
                    state,
                    lambda s: (
                        s[0] == produced and set(s[1][:2]) == {"a3", "a5"} and s[2][0] == "a0"
                    ),
                    90,
                    "every event applied and the clicked items ranked first",
                    interval_s=0.25,
                )
            except AssertionError:
                print(log_tail(tmp_path / "w.log"))
                raise
            assert sorted(alice) == sorted(bob) == ITEMS

            # Weights live in one bounded hash of feature indexes.
            weights = await store.hgetall(keys.rank_weights())
            n_bits = ranking_config(isolated).n_bits
            assert weights and all(0 <= int(index) < 2**n_bits for index in weights)
            # AdaGrad's sums of squared gradients: one per learned weight, all positive.
            sums = await store.hgetall(keys.rank_sums())
            assert sums.keys() == weights.keys()
            assert all(float(total) > 0 for total in sums.values())

            # A stranger and unknown items are still ranked (bias, context, categories).
            response = await client.post(
                "/v1/users/stranger/rank", json={"items": ["new-1", "a3", "new-2", "new-1"]}
            )
            assert response.status_code == 200, response.text
            ranked = [item["item_id"] for item in response.json()["items"]]
            assert sorted(ranked) == ["a3", "new-1", "new-2"]
    finally:
        worker.stop()
        await store.close()


async def test_bad_requests_answer_422_with_a_reason(isolated: Settings):
    async with reader(isolated) as client:
        cases = [
            ("alice", {"items": ["a0", "has space"]}, "items[]"),
            ("alice", {"items": []}, "items"),
            ("alice", {"items": [f"i{k}" for k in range(501)]}, "items"),
            ("alice", {"items": [1, 2]}, "items"),
            ("alice", {"items": ["a0"], "context": {"device": {"nested": 1}}}, "context"),
            ("alice", {"items": ["a0"], "context": {"flag": True}}, "context"),
            ("has{brace}", {"items": ["a0"]}, "user_id"),
        ]
        for user, body, mentioned in cases:
            response = await client.post(f"/v1/users/{user}/rank", json=body)
            assert response.status_code == 422, (body, response.text)
            payload = response.json()
            assert payload["error"] == "invalid_parameter"
            assert mentioned in payload["detail"], payload
        response = await client.post(
            "/v1/users/alice/rank",
            content=b"{not json",
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 422


async def test_redis_down_answers_503_quickly():
    settings = Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0", redis_timeout_s=0.2)
    async with reader(settings) as client:
        started = time.monotonic()
        response = await client.post("/v1/users/alice/rank", json={"items": ["a0"]})
        assert response.status_code == 503
        assert response.json()["error"] == "redis_unavailable"
        assert time.monotonic() - started < 5
