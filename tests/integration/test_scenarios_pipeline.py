"""Scenarios end to end: events through Kafka and the agents, a scenario's answer from the
reader, and the clicks and conversions that carry its id back counted in its statistics."""

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

GROUPS = "catalog,trending,personal,attribution"


async def test_a_scenario_is_served_and_its_clicks_and_conversions_are_counted(
    isolated: Settings, tmp_path: Path
) -> None:
    topics = declared_topics(isolated)
    await apply_topics(isolated.kafka_bootstrap, topics.specs)
    now = int(time.time() * 1000)
    items = [
        {
            "item_id": f"shoe/{i}",
            "categories": ["shoes/running"],
            "price": 10.0 * i,
            "title": f"Shoe {i}",
            "created_at": now - 40 * 86_400_000,
        }
        for i in range(1, 6)
    ] + [
        {
            "item_id": "hat",
            "categories": ["hats"],
            "price": 5.0,
            "created_at": now - 40 * 86_400_000,
        }
    ]
    await produce(isolated, topics.catalog.name, [(i["item_id"].encode(), i) for i in items])
    clicks = [
        {
            "event_id": f"c{u}-{i}",
            "type": "click",
            "user_id": f"fan{u}",
            "item_id": f"shoe/{i}",
            "timestamp": now - 60_000 + u * 100 + i,
        }
        for u in range(6)
        for i in range(1, 6 - u % 3)
    ]
    await produce(
        isolated, topics.for_event_type("click"), [(c["user_id"].encode(), c) for c in clicks]
    )
    worker = pipeline_process(isolated, ["worker", "--agents", GROUPS], tmp_path / "worker.log")
    try:
        async with reader_client(isolated) as client:
            scenarios = await get_json(client, "/v1/scenarios")
            assert {"home", "product_page", "category_page"} <= {
                s["name"] for s in scenarios["scenarios"]
            }
            try:
                answer = await wait_for(
                    lambda: get_json(
                        client,
                        "/v1/recommendations",
                        scenario="product_page",
                        item_id="shoe/1",
                        n="3",
                        fields="title,price",
                    ),
                    lambda body: len(body["items"]) == 3,
                    60,
                    "three items for the product page of shoe/1",
                )
            except AssertionError:
                print(log_tail(tmp_path / "worker.log"))
                raise
            served = [item["item_id"] for item in answer["items"]]
            # Co-clicked shoes first; never the product shown; catalog fields attached.
            assert "shoe/1" not in served and served[0].startswith("shoe/")
            assert answer["items"][0]["source"]["stage"] == "related"
            assert answer["items"][0]["item"]["title"].startswith("Shoe")
            # Per-request filters: a price cap and an explicit exclusion.
            capped = await get_json(
                client,
                "/v1/recommendations",
                scenario="home",
                max_price="25",
                exclude="shoe/2",
                n="10",
            )
            assert capped["items"] and "shoe/2" not in [i["item_id"] for i in capped["items"]]
            assert all(i["item_id"] in {"shoe/1", "hat"} for i in capped["items"])

            # The website reports what it showed and what was clicked and bought.
            rid = answer["recommendation_id"]
            first = answer["items"][0]
            shown = [
                item["item_id"] for item in answer["items"] if item["source"]["stage"] == "related"
            ]
            feedback = [
                {
                    "event_id": "imp1",
                    "type": "impression",
                    "user_id": "shopper",
                    "items": shown,
                    "recommendation_id": f"{rid}:related",
                    "timestamp": now,
                },
                {
                    "event_id": "clk1",
                    "type": "click",
                    "user_id": "shopper",
                    "item_id": first["item_id"],
                    "recommendation_id": first["recommendation_id"],
                    "timestamp": now + 1,
                },
            ]
            for event in feedback:
                await produce(isolated, topics.for_event_type(event["type"]), [(b"shopper", event)])
            await wait_for(
                lambda: get_json(client, "/v1/scenarios/product_page/stats", window="1h"),
                lambda body: body["clicks"] == 1,
                60,
                "the click counted",
            )
            # Later, a purchase without recommendation_id: credited to the click before it.
            purchase = {
                "event_id": "buy1",
                "type": "buy",
                "user_id": "shopper",
                "item_id": first["item_id"],
                "timestamp": now + 2,
            }
            await produce(isolated, topics.for_event_type("buy"), [(b"shopper", purchase)])
            stats = await wait_for(
                lambda: get_json(client, "/v1/scenarios/product_page/stats", window="1h"),
                # The reader writes its served counts within a second, in the background.
                lambda body: body["conversions"] == 1 and body["served"] >= 3,
                60,
                "the conversion and the items served counted",
            )
            assert stats["impressions"] == len(shown) and stats["basis"] == "impressions"
            assert stats["click_through_rate"] == pytest.approx(1 / len(shown))
            assert stats["stages"]["related"]["conversions"] == 1
            assert stats["items"][0]["item_id"] == first["item_id"]
    finally:
        worker.stop()


async def test_bad_requests_answer_4xx_with_a_reason(isolated: Settings) -> None:
    async with reader_client(isolated) as client:
        cases = [
            ({"scenario": "nope"}, 404, "unknown_scenario"),
            ({}, 422, "scenario is required"),
            ({"scenario": "home", "colour": "red"}, 422, "unknown parameters"),
            ({"scenario": "home", "n": "500"}, 422, "n must be"),
            ({"scenario": "home", "max_price": "cheap"}, 422, "max_price must be a number"),
            ({"scenario": "home", "user_id": "bad id"}, 422, "user_id"),
        ]
        for params, status, reason in cases:
            response = await client.get("/v1/recommendations", params=params)
            assert response.status_code == status, (params, response.text)
            body = response.json()
            assert set(body) == {"error", "detail"} and reason in response.text
        stats = await client.get("/v1/scenarios/home/stats", params={"window": "1y"})
        assert stats.status_code == 422 and "window" in stats.json()["detail"]
        # A campaign's name (segments) answers too, marked as no scenario of the file.
        campaign = await client.get("/v1/scenarios/spring-mail/stats")
        assert campaign.status_code == 200 and campaign.json()["defined"] is False
        assert campaign.json()["clicks"] == 0
        bad = await client.get("/v1/scenarios/a%20b/stats")
        assert bad.status_code == 422
