"""``POST /v1/items`` end to end: items posted over HTTP to the collector (real producer, real
broker) reach the catalog hash in Redis (``{p}:item:{item_id}``) through the catalog agent
group, and a later version replaces the earlier one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from pipeline.api.collector import create_collector_app
from pipeline.core.keys import Keys
from pipeline.core.settings import Settings
from pipeline.features.registry import declared_topics
from pipeline.store.redis import connect
from pipeline.stream.kafka import apply_topics
from tests.integration.helpers import log_tail, pipeline_process, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

READ_KEY = "it-read-key-0123456789abcdef"
WRITE_KEY = "it-write-key-0123456789abcdef"


def with_keys(settings: Settings) -> Settings:
    return settings.model_copy(update={"read_api_keys": [READ_KEY], "write_api_keys": [WRITE_KEY]})


@asynccontextmanager
async def collector_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on an in-process collector app producing to the real broker, sending
    the write key."""
    app = create_collector_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://collector",
            headers={"X-API-Key": WRITE_KEY},
        ) as client,
    ):
        yield client


async def test_items_posted_over_http_reach_the_catalog_in_redis(
    isolated: Settings, tmp_path: Path
) -> None:
    settings = with_keys(isolated)
    await apply_topics(settings.kafka_bootstrap, declared_topics(settings).specs)
    log = tmp_path / "worker.log"
    worker = pipeline_process(settings, ["worker", "--agents", "catalog"], log)
    store = connect(settings)
    key = Keys(settings.key_prefix).item("shoes/red-1")
    try:
        async with collector_client(settings) as collector:
            first = {
                "item_id": "shoes/red-1",
                "categories": ["shoes"],
                "attributes": {"color": "red"},
                "price": 59.9,
                "title": "Red shoe",
            }
            response = await collector.post("/v1/items", json=[first, {"item_id": "bad id"}])
            assert response.status_code == 200, response.text
            assert (response.json()["accepted"], response.json()["rejected"]) == (1, 1)

            async def stored() -> dict:
                raw = await store.redis.hgetall(key)
                return {k.decode(): v.decode() for k, v in raw.items()}

            try:
                fields = await wait_for(stored, lambda f: bool(f), 60, "the item's hash")
            except AssertionError:
                print(log_tail(log))
                raise
            assert fields["item_id"] == "shoes/red-1"
            assert fields["title"] == "Red shoe"
            assert float(fields["price"]) == 59.9
            assert fields["categories"] == '["shoes"]'
            assert fields["available"] == "1"

            # A later version replaces the earlier one whole.
            second = {"item_id": "shoes/red-1", "available": False, "title": "Red shoe (gone)"}
            response = await collector.post("/v1/items", json=second)
            assert response.status_code == 200, response.text
            fields = await wait_for(
                stored, lambda f: f.get("available") == "0", 60, "the second version"
            )
            assert fields["title"] == "Red shoe (gone)"
            assert "price" not in fields
    finally:
        await store.close()
        worker.stop()
