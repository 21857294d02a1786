"""The reader against a real redis-server: ranking, decay, filters, and fast 503s.

Trending data is written the way the trending agent writes it: ZINCRBY of
``forward_weight`` into the event's generation and the next one, under ``Keys``.
"""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator, Iterator
from uuid import uuid4

import httpx
import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from fastapi import FastAPI

from pipeline.api.reader import create_reader_app
from pipeline.core.decay import forward_weight, generation
from pipeline.core.keys import Keys
from pipeline.core.settings import Settings, load_settings
from pipeline.tools.local import free_port, start_redis

pytestmark = pytest.mark.integration

HOUR_MS = 3_600_000


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    server = start_redis(free_port())
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def settings(redis_url: str) -> Settings:
    return load_settings(redis_url=redis_url, key_prefix=f"t{uuid4().hex[:8]}")


@pytest_asyncio.fixture
async def redis(settings: Settings) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(settings.redis_url)
    try:
        yield client
    finally:
        keys = [key async for key in client.scan_iter(Keys(settings.key_prefix).pattern())]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def _client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


@pytest_asyncio.fixture
async def reader(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(create_reader_app(settings)):
        yield client


async def add_event(
    redis: aioredis.Redis,
    settings: Settings,
    item_id: str,
    *,
    kind: str = "clicks",
    window: str = "1h",
    age_ms: int = 0,
    weight: float = 1.0,
    category: str | None = None,
) -> None:
    """What the agent does for one event: add to its generation and the next one."""
    half_life = settings.trending_windows[window]
    timestamp = int(time.time() * 1000) - age_ms
    gen = generation(timestamp, half_life)
    keys = Keys(settings.key_prefix)
    for target in (gen, gen + 1):
        amount = forward_weight(weight, timestamp, target, half_life)
        await redis.zincrby(keys.trending(kind, window, target, category), amount, item_id)


@pytest.mark.asyncio
async def test_ranking_and_decayed_scores(reader, redis, settings) -> None:
    for _ in range(3):
        await add_event(redis, settings, "hot")
    await add_event(redis, settings, "fresh")
    await add_event(redis, settings, "old", age_ms=HOUR_MS)  # one half-life ago
    await add_event(redis, settings, "other-window", window="1d")

    response = await reader.get("/v1/trending", params={"kind": "clicks", "window": "1h"})
    assert response.status_code == 200
    body = response.json()
    assert (body["kind"], body["window"], body["category"]) == ("clicks", "1h", None)
    assert abs(body["generated_at"] - time.time() * 1000) < 5_000
    assert [item["item_id"] for item in body["items"]] == ["hot", "fresh", "old"]
    scores = [item["score"] for item in body["items"]]
    assert scores == pytest.approx([3.0, 1.0, 0.5], rel=1e-3)
    assert body["items"][0]["source"] == {
        "model": "trending",
        "kind": "clicks",
        "window": "1h",
        "category": None,
    }

    limited = (await reader.get("/v1/trending", params={"n": 2})).json()
    assert [item["item_id"] for item in limited["items"]] == ["hot", "fresh"]


@pytest.mark.asyncio
async def test_category_and_kind_select_their_own_set(reader, redis, settings) -> None:
    await add_event(redis, settings, "shoe", category="shoes", weight=2)
    await add_event(redis, settings, "shoe")
    await add_event(redis, settings, "hat")
    await add_event(redis, settings, "bought", kind="conversions", weight=4)

    shoes = (await reader.get("/v1/trending", params={"category": "shoes"})).json()
    assert shoes["category"] == "shoes"
    assert [item["item_id"] for item in shoes["items"]] == ["shoe"]
    assert shoes["items"][0]["score"] == pytest.approx(2.0, rel=1e-3)
    assert shoes["items"][0]["source"]["category"] == "shoes"

    conversions = (await reader.get("/v1/trending", params={"kind": "conversions"})).json()
    assert [item["item_id"] for item in conversions["items"]] == ["bought"]
    assert conversions["items"][0]["score"] == pytest.approx(4.0, rel=1e-3)


@pytest.mark.asyncio
async def test_unavailable_items_are_dropped(reader, redis, settings) -> None:
    keys = Keys(settings.key_prefix)
    for rank, item_id in enumerate(["gone", "listed", "unknown", "gone-too"]):
        await add_event(redis, settings, item_id, weight=10 - rank)
    await redis.hset(keys.item("gone"), mapping={"item_id": "gone", "available": "0"})
    await redis.hset(keys.item("gone-too"), mapping={"item_id": "gone-too", "available": "0"})
    await redis.hset(keys.item("listed"), mapping={"item_id": "listed", "available": "1"})
    # As the catalog agent records availability for readers (see core/keys.py).
    await redis.sadd(keys.unavailable_items(), "gone", "gone-too")
    await redis.incr(keys.catalog_version())

    body = (await reader.get("/v1/trending", params={"n": 2})).json()
    assert [item["item_id"] for item in body["items"]] == ["listed", "unknown"]


@pytest.mark.asyncio
async def test_many_unavailable_items_still_fill_n(reader, redis, settings) -> None:
    keys = Keys(settings.key_prefix)
    # More hidden items than a page (2n + 20) holds.
    for index in range(30):
        await add_event(redis, settings, f"hidden{index}", weight=100)
        await redis.hset(keys.item(f"hidden{index}"), "available", "0")
        await redis.sadd(keys.unavailable_items(), f"hidden{index}")
    await redis.incr(keys.catalog_version())
    await add_event(redis, settings, "shown", weight=1)
    body = (await reader.get("/v1/trending", params={"n": 1})).json()
    assert [item["item_id"] for item in body["items"]] == ["shown"]


@pytest.mark.asyncio
async def test_empty_set_and_probes(reader) -> None:
    body = (await reader.get("/v1/trending", params={"window": "7d"})).json()
    assert body["items"] == []
    ready = await reader.get("/readyz")
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
    metrics = (await reader.get("/metrics")).text
    assert 'reader_requests_total{method="GET",route="/v1/trending",status="200"}' in metrics


async def _assert_fast_503(settings: Settings) -> None:
    async for client in _client(create_reader_app(settings)):
        for path in ("/readyz", "/v1/trending"):
            started = time.monotonic()
            response = await client.get(path)
            elapsed = time.monotonic() - started
            assert response.status_code == 503, path
            assert elapsed < 2.0, f"{path} took {elapsed:.2f} s"
        assert (await client.get("/readyz")).json()["status"] == "unavailable"
        assert "Redis" in (await client.get("/v1/trending")).json()["detail"]
        assert (await client.get("/healthz")).status_code == 200


@pytest.mark.asyncio
async def test_redis_down_answers_503_fast() -> None:
    await _assert_fast_503(load_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0"))


@pytest.mark.asyncio
async def test_redis_silent_answers_503_fast() -> None:
    # A socket that accepts connections (kernel backlog) but never answers: a hung Redis.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        await _assert_fast_503(load_settings(redis_url=f"redis://127.0.0.1:{port}/0"))
