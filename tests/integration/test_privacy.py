"""A privacy request end to end (docs/privacy.md): a user's events are learned by every agent
group, ``DELETE /v1/users/{user_id}`` on a real collector produces a ``forget`` to the real
broker, and the worker then leaves no trace of the user in Redis (no key, member, field or
value mentions the id); the reader falls back for the user; a later event starts afresh."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from pipeline.api.collector import create_collector_app
from pipeline.core.keys import Keys
from pipeline.core.settings import Settings
from pipeline.features.registry import declared_topics
from pipeline.features.segments.model import live_generations
from pipeline.features.segments.state import load_entered
from pipeline.store.redis import RedisStore, connect
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

# A slash and a colon: the id travels through the path convertor and into keys as it is.
USER = "shop/forget-me:7f3a"
ANONYMOUS = "visitor-4b2c9e"
# Every agent group that reads events (attribution is the lead's and has its own test).
AGENTS = "catalog,trending,personal,ranking,segments"
CATALOG = [
    {"item_id": f"tool-{n}", "categories": ["tools"], "attributes": {"brand": f"b{n % 2}"}}
    for n in range(6)
]


def event(n: int, kind: str, user: str, ts: int, item: str | None = None, **extra: Any) -> dict:
    # Event ids never contain the user id: de-duplication keeps ids for an hour (see docs).
    body = {"event_id": f"pv-{n}", "type": kind, "user_id": user, "timestamp": ts, **extra}
    if item is not None:
        body["item_id"] = item
    return body


@asynccontextmanager
async def collector_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on an in-process collector app, producing to the real broker."""
    app = create_collector_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://collector"
        ) as client,
    ):
        yield client


async def mentions(store: RedisStore, keys: Keys, needle: str) -> list[str]:
    """Every key of the namespace whose name, members, fields or value contain ``needle``."""
    redis = store.redis
    found = []
    target = needle.encode()
    for key in await store.scan(keys.pattern()):
        kind = (await redis.type(key)).decode()
        if kind == "string":
            parts = [await redis.get(key) or b""]
        elif kind == "hash":
            parts = [part for pair in (await redis.hgetall(key)).items() for part in pair]
        elif kind == "zset":
            parts = await redis.zrange(key, 0, -1)
        elif kind == "set":
            parts = list(await redis.smembers(key))
        else:
            parts = await redis.lrange(key, 0, -1)
        if needle in key or any(target in part for part in parts):
            found.append(key)
    return sorted(found)


async def test_a_deleted_user_leaves_no_trace_and_starts_afresh(
    isolated: Settings, tmp_path: Path
) -> None:
    topics = declared_topics(isolated)
    await apply_topics(isolated.kafka_bootstrap, topics.specs)
    keys = Keys(isolated.key_prefix)
    store = connect(isolated)
    now = int(time.time() * 1000)
    await produce(isolated, topics.catalog.name, [(i["item_id"].encode(), i) for i in CATALOG])
    events = []
    # Others bought tool-0 and tool-1 together, so the user's list has something to offer.
    for u in range(8):
        events += [
            event(len(events), "buy", f"other-{u}", now - 9000, "tool-0"),
            event(len(events) + 1, "buy", f"other-{u}", now - 8000, "tool-1"),
        ]
    # The user browsed anonymously, logged in, saw a list, clicked, bought and blacklisted.
    events += [
        event(100, "click", ANONYMOUS, now - 7000, "tool-2"),
        event(101, "login", USER, now - 6000, previous_user_id=ANONYMOUS),
        event(102, "impression", USER, now - 5500, items=["tool-3", "tool-4", "tool-0"]),
        event(103, "click", USER, now - 5000, "tool-3", context={"position": 0}),
        event(104, "buy", USER, now - 4000, "tool-0"),
        event(105, "blacklist", USER, now - 3000, "tool-5"),
    ]

    async def publish(batch: list[dict]) -> None:
        for kind in sorted({e["type"] for e in batch}):
            chosen = [(e["user_id"].encode(), e) for e in batch if e["type"] == kind]
            await produce(isolated, topics.for_event_type(kind), chosen)

    await publish(events)
    log = tmp_path / "worker.log"
    worker = pipeline_process(isolated, ["worker", "--agents", AGENTS], log)
    try:
        async with reader_client(isolated) as reader, collector_client(isolated) as collector:
            for_you = f"/v1/users/{USER}/recommendations"
            alive = live_generations(now, 0, isolated.segments_half_life_s)

            async def learned() -> dict[str, Any]:
                stored = await store.mget(
                    [
                        keys.user_history(USER),
                        keys.user_factors(USER),
                        keys.foryou(USER),
                        keys.user_alias(ANONYMOUS),
                    ]
                )
                indexed = await load_entered(store, keys, [USER], alive)
                return {
                    "stored": [value is not None for value in stored],
                    "segments": len(indexed[USER]),
                    "stage": (await get_json(reader, for_you))["stage"],
                }

            try:
                # Every personal key, the alias, the segment index (tool-0 and tool-3 in two
                # generations and their category and brands), and a personal list served.
                await wait_for(
                    learned,
                    lambda s: all(s["stored"]) and s["segments"] >= 8 and s["stage"] != "fallback",
                    60,
                    "the user's state learned by every group",
                )
                assert await mentions(store, keys, USER), "the user left no trace to delete"
                rank_weights = await store.hgetall(keys.rank_weights())
                assert rank_weights

                response = await collector.delete(f"/v1/users/{USER}")
                assert response.status_code == 202, response.text
                assert response.json()["user_id"] == USER

                await wait_for(
                    lambda: mentions(store, keys, USER),
                    lambda found: found == [],
                    60,
                    "no key mentioning the user",
                )
            except AssertionError:
                print(log_tail(log))
                raise
            assert await store.get(keys.user_alias(ANONYMOUS)) is None
            fallback = await get_json(reader, for_you)
            assert fallback["stage"] == "fallback"
            # Aggregates stay: the related items the user's purchase fed, and the trending.
            related = await get_json(reader, "/v1/items/tool-0/related", relation="also_bought")
            assert "tool-1" in [item["item_id"] for item in related["items"]]

            # A new event of the user starts a fresh history, with nothing from before.
            await publish([event(200, "click", USER, int(time.time() * 1000), "tool-4")])

            async def history() -> dict[str, Any] | None:
                raw = await store.get(keys.user_history(USER))
                return None if raw is None else orjson.loads(raw)

            fresh = await wait_for(history, lambda h: h is not None, 60, "the new history")
            assert fresh is not None
            assert [entry[0] for entry in fresh["recent"]] == ["tool-4"]
            assert fresh["excluded"] == {} and fresh["blacklisted"] == []
            assert fresh["merged"] == []
            await wait_for(
                lambda: get_json(reader, for_you),
                lambda body: body["stage"] != "fallback",
                30,
                "a new list for the user",
            )
    finally:
        worker.stop()
        await store.close()
