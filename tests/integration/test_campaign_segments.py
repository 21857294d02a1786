"""Segments for campaigns: users for an item without those who already converted or went
idle, and a recommendation id whose conversions are counted for the campaign."""

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
DAY_MS = 86_400_000


def event(name: str, kind: str, user: str, item: str, ts: int, **extra: object) -> dict:
    return {
        "event_id": name,
        "type": kind,
        "user_id": user,
        "item_id": item,
        "timestamp": ts,
        **extra,
    }


async def test_campaign_audience_filters_and_attribution(
    isolated: Settings, tmp_path: Path
) -> None:
    topics = declared_topics(isolated)
    await apply_topics(isolated.kafka_bootstrap, topics.specs)
    now = int(time.time() * 1000)
    events = [
        event("a1", "click", "fresh", "kettle", now - 60_000),
        event("b1", "click", "buyer", "kettle", now - 50_000),
        event("b2", "buy", "buyer", "kettle", now - 40_000),
        event("c1", "click", "idle", "kettle", now - 20 * DAY_MS),
    ]
    for e in events:
        await produce(isolated, topics.for_event_type(e["type"]), [(e["user_id"].encode(), e)])
    groups = "personal,segments,attribution"
    worker = pipeline_process(isolated, ["worker", "--agents", groups], tmp_path / "worker.log")
    try:
        async with reader_client(isolated) as client:
            try:
                everyone = await wait_for(
                    lambda: get_json(client, "/v1/items/kettle/segment", n=10),
                    lambda body: (
                        {u["user_id"] for u in body["users"]} == {"fresh", "buyer", "idle"}
                    ),
                    60,
                    "three users in the kettle's segment",
                )
                # The purchase is in the buyer's history once the personal agent applied it.
                await wait_for(
                    lambda: get_json(
                        client, "/v1/items/kettle/segment", n=10, exclude_converted="true"
                    ),
                    lambda body: "buyer" not in {u["user_id"] for u in body["users"]},
                    60,
                    "the buyer left out",
                )
            except AssertionError:
                print(log_tail(tmp_path / "worker.log"))
                raise
            rid = everyone["recommendation_id"]
            assert rid.startswith("email:") and rid.endswith(":segment")
            active = await get_json(client, "/v1/items/kettle/segment", n=10, active_days="7")
            assert {u["user_id"] for u in active["users"]} == {"fresh", "buyer"}
            both = await get_json(
                client,
                "/v1/items/kettle/segment",
                n=10,
                active_days="7",
                exclude_converted="true",
                scenario="kettle-mail",
            )
            assert [u["user_id"] for u in both["users"]] == ["fresh"]
            campaign = both["recommendation_id"]
            assert campaign.startswith("kettle-mail:")

            # The mail's link carries the id; the purchase it led to is counted.
            bought = event("m1", "buy", "fresh", "kettle", now, recommendation_id=campaign)
            await produce(isolated, topics.for_event_type("buy"), [(b"fresh", bought)])
            stats = await wait_for(
                lambda: get_json(client, "/v1/scenarios/kettle-mail/stats", window="1h"),
                lambda body: body["conversions"] == 1,
                60,
                "the campaign's conversion counted",
            )
            assert stats["stages"]["segment"]["conversions"] == 1 and stats["defined"] is False
            bad = await client.get("/v1/items/kettle/segment", params={"scenario": "a:b"})
            assert bad.status_code == 422
    finally:
        worker.stop()
