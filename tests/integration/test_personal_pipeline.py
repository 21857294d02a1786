"""The personal agent group end to end: for-you lists, related items, blacklist, login."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pipeline.core.settings import Settings
from pipeline.features.registry import declared_topics
from pipeline.stream.kafka import apply_topics
from tests.integration.helpers import (
    get_json,
    log_tail,
    pipeline_process,
    produce,
    reader_client,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]


def event(n: int, kind: str, user: str, item: str | None, ts: int, **extra) -> dict:
    body = {"event_id": f"p{n}", "type": kind, "user_id": user, "timestamp": ts, **extra}
    if item is not None:
        body["item_id"] = item
    return body


async def test_foryou_related_blacklist_and_login(isolated: Settings, tmp_path: Path):
    topics = declared_topics(isolated)
    await apply_topics(isolated.kafka_bootstrap, topics.specs)
    now = int(time.time() * 1000)
    events = []
    # Twenty users who bought "tent" also bought "stove" (and looked at "lamp" first).
    for u in range(20):
        user = f"camper-{u}"
        events += [
            event(len(events), "click", user, "lamp", now - 5000),
            event(len(events) + 1, "buy", user, "tent", now - 4000),
            event(len(events) + 2, "buy", user, "stove", now - 3000),
        ]
    # Background noise so that popularity is not the whole story.
    for u in range(20):
        events.append(event(len(events), "click", f"reader-{u}", "novel", now - 2000))
    # An anonymous visitor buys a tent, then logs in as "alice".
    events.append(event(len(events), "buy", "anon-1", "tent", now - 1000))
    events.append(event(len(events), "login", "alice", None, now - 900, previous_user_id="anon-1"))

    async def publish(batch: list[dict]) -> None:
        for kind in {e["type"] for e in batch}:
            chosen = [(e["user_id"].encode(), e) for e in batch if e["type"] == kind]
            await produce(isolated, topics.for_event_type(kind), chosen)

    # One topic at a time would reorder a user's events across topics; the agent sorts each
    # batch by timestamp, and co-partitioning keeps a user's events on one worker.
    await publish(events)
    worker = pipeline_process(isolated, ["worker", "--agents", "personal"], tmp_path / "worker.log")
    try:
        async with reader_client(isolated) as client:

            async def get(path: str, **params) -> dict:
                return await get_json(client, path, **params)

            try:
                related = await wait_for(
                    lambda: get("/v1/items/tent/related", relation="also_bought"),
                    lambda body: [i["item_id"] for i in body["items"]][:1] == ["stove"],
                    60,
                    "stove as also-bought of tent",
                )
            except AssertionError:
                print(log_tail(tmp_path / "worker.log"))
                raise
            assert related["items"][0]["source"] == {
                "model": "related",
                "relation": "also_bought",
                "source_items": ["tent"],
            }
            viewed = await get("/v1/items/lamp/related", relation="viewed_then_bought")
            assert {i["item_id"] for i in viewed["items"]} == {"tent", "stove"}

            # Alice inherited anon-1's history: her list excludes the tent she bought and
            # offers the stove that tent buyers also bought.
            # The login and the anonymous purchase travel on different topics and keys, so
            # they may be learned in either order and in different batches; wait for the
            # state after both. One purchase is little history: the list is "cold_start".
            alice = await wait_for(
                lambda: get("/v1/users/alice/recommendations", n=5),
                lambda body: (
                    body["stage"] == "cold_start"
                    and "tent"
                    in (body["items"][0]["source"].get("source_items", []) if body["items"] else [])
                ),
                30,
                "alice's list, led by what tent buyers bought",
            )
            ids = [i["item_id"] for i in alice["items"]]
            assert "tent" not in ids
            assert ids[0] == "stove", alice
            assert "tent" in alice["items"][0]["source"].get("source_items", [])
            # The anonymous id follows its login alias: alice's list, not the fallback, on
            # the fast lane and on the FastAPI route (an extra parameter skips the fast lane).
            for params in ({"n": 5}, {"n": 5, "extra": "1"}):
                anon = await get("/v1/users/anon-1/recommendations", **params)
                assert anon["user_id"] == "anon-1"
                assert (anon["stage"], anon["items"]) == (alice["stage"], alice["items"])
            # A scenario resolves the alias too: the personal stage serves alice's stove.
            home = await get("/v1/recommendations", scenario="home", user_id="anon-1", n=3)
            personal = [i["item_id"] for i in home["items"] if i["source"]["stage"] == "personal"]
            assert personal[:1] == ["stove"], home
            assert "tent" not in [i["item_id"] for i in home["items"]]
            unknown = await get("/v1/users/nobody/recommendations")
            assert unknown["stage"] == "fallback"

            # Blacklisting the stove removes it from her list within one flush.
            await publish([event(10_000, "blacklist", "alice", "stove", now)])
            after = await wait_for(
                lambda: get("/v1/users/alice/recommendations", n=5),
                lambda body: "stove" not in [i["item_id"] for i in body["items"]],
                30,
                "stove gone from alice's list",
            )
            assert "tent" not in [i["item_id"] for i in after["items"]]

            bad = await client.get("/v1/items/te nt/related")
            assert bad.status_code == 422 and "item_id" in bad.json()["detail"]
            bad = await client.get("/v1/items/tent/related", params={"relation": "cousins"})
            assert bad.status_code == 422 and "also_bought" in bad.json()["detail"]
    finally:
        worker.stop()
