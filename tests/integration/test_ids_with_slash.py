"""Ids with ``/`` end to end: events about item ``a/b`` posted to the collector over HTTP
(real producer, broker and worker) are readable back from the reader, with the ``/`` sent as
is or as ``%2F``, behind API keys."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pipeline.core.settings import Settings
from pipeline.features.registry import declared_topics
from pipeline.stream.kafka import apply_topics
from tests.integration.helpers import log_tail, pipeline_process, reader_client, wait_for
from tests.integration.test_items_http import READ_KEY, collector_client, with_keys

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

ITEM = "a/b"
PARTNER = "c/d"


async def test_an_item_id_with_a_slash_is_readable_back(isolated: Settings, tmp_path: Path):
    settings = with_keys(isolated)
    await apply_topics(settings.kafka_bootstrap, declared_topics(settings).specs)
    log = tmp_path / "worker.log"
    worker = pipeline_process(settings, ["worker", "--agents", "trending,personal"], log)
    now = int(time.time() * 1000)
    # Three users click a/b, then c/d: each item is the other's "also clicked".
    events = [
        {
            "event_id": f"s{u}{i}",
            "type": "click",
            "user_id": f"shop/u{u}",
            "item_id": item,
            "timestamp": now - 5000 + 100 * u + i,
        }
        for u in range(3)
        for i, item in enumerate((ITEM, PARTNER))
    ]
    try:
        async with collector_client(settings) as collector:
            response = await collector.post("/v1/events", json=events)
            assert response.status_code == 200, response.text
            assert response.json()["accepted"] == len(events)

        async with reader_client(settings) as reader:
            reader.headers["X-API-Key"] = READ_KEY

            async def get(path: str) -> dict:
                response = await reader.get(path)
                assert response.status_code == 200, f"{path}: {response.text}"
                return response.json()

            def item_ids(body: dict) -> list[str]:
                return [item["item_id"] for item in body["items"]]

            try:
                trending = await wait_for(
                    lambda: get("/v1/trending?kind=clicks&window=1h"),
                    lambda body: {ITEM, PARTNER} <= set(item_ids(body)),
                    60,
                    "a/b and c/d trending",
                )
                related = await wait_for(
                    lambda: get("/v1/items/a%2Fb/related?relation=also_clicked"),
                    lambda body: item_ids(body) == [PARTNER],
                    60,
                    "c/d related to a/b",
                )
            except AssertionError:
                print(log_tail(log))
                raise
            assert related["item_id"] == ITEM
            assert set(item_ids(trending)) == {ITEM, PARTNER}
            unescaped = await get("/v1/items/a/b/related?relation=also_clicked")
            assert unescaped["item_id"] == ITEM and item_ids(unescaped) == [PARTNER]
            # Through FastAPI too (an extra parameter steps past the fast lane).
            slow = await get("/v1/items/c%2Fd/related?relation=also_clicked&ignored=1")
            assert slow["item_id"] == PARTNER and item_ids(slow) == [ITEM]

            mine = await wait_for(
                lambda: get("/v1/users/shop%2Fu1/recommendations?n=5"),
                lambda body: body["stage"] != "fallback",
                60,
                "shop/u1's own list",
            )
            assert mine["user_id"] == "shop/u1"
            # Without the key the same read is refused.
            del reader.headers["X-API-Key"]
            assert (await reader.get("/v1/items/a%2Fb/related")).status_code == 401
    finally:
        worker.stop()
