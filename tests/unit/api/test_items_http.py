"""``POST /v1/items`` (pipeline.api.items) and the request bodies the collector documents
(pipeline.api.schemas), without servers: the collector gets an in-memory producer."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
import pytest_asyncio

from pipeline.api.collector import create_collector_app
from pipeline.core.events import event_from_dict
from pipeline.core.items import item_from_dict
from pipeline.features.registry import declared_topics
from pipeline.tools.publish import route
from tests.unit.api.helpers import client_of
from tests.unit.api.test_collector import (
    PREFIX,
    DownProducer,
    ListProducer,
    collector_settings,
)

SHOE = {
    "item_id": "shoes/red-1",
    "categories": ["shoes", "sale", "shoes"],
    "attributes": {"color": "red", "size": [41, 42]},
    "created_at": "2026-01-01T00:00:00Z",
    "price": 59.9,
    "title": "Red shoe",
}


@pytest.fixture
def producer() -> ListProducer:
    return ListProducer()


@pytest_asyncio.fixture
async def collector(producer: ListProducer) -> AsyncIterator[httpx.AsyncClient]:
    settings = collector_settings(collector_max_events=3)
    async for client in client_of(create_collector_app(settings, producer=producer)):
        yield client


@pytest.mark.asyncio
async def test_one_item_goes_to_the_catalog_topic_as_the_file_path_sends_it(
    collector, producer
) -> None:
    response = await collector.post("/v1/items", json=SHOE)
    assert response.status_code == 200
    assert response.json() == {
        "accepted": 1,
        "rejected": 0,
        "results": [{"index": 0, "item_id": "shoes/red-1", "status": "accepted"}],
    }
    settings = collector_settings()
    expected = route(SHOE, declared_topics(settings), True, int(time.time() * 1000), settings)
    assert producer.sent == [expected]
    topic, key, value = producer.sent[0]
    assert (topic, key) == (f"{PREFIX}catalog.items", b"shoes/red-1")
    assert orjson.loads(value)["categories"] == ["shoes", "sale"]


@pytest.mark.asyncio
async def test_a_list_is_reported_item_by_item(collector, producer) -> None:
    batch = [SHOE, {"item_id": "bad id"}, {"item_id": "hat-3", "available": False}]
    response = await collector.post(
        "/v1/items", content=orjson.dumps(batch), headers={"content-type": "text/plain"}
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (2, 1)
    assert body["results"][1]["status"] == "rejected"
    assert "item_id" in body["results"][1]["reason"]
    assert [key for _, key, _ in producer.sent] == [b"shoes/red-1", b"hat-3"]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b"{not json", 400, "invalid_json"),
        (b"[]", 400, "empty_batch"),
        (orjson.dumps([{"item_id": f"i{n}"} for n in range(4)]), 413, "too_many_items"),
    ],
)
async def test_bad_bodies(collector, producer, body: bytes, status: int, error: str) -> None:
    response = await collector.post("/v1/items", content=body)
    assert response.status_code == status
    assert response.json()["error"] == error
    assert producer.sent == []


@pytest.mark.asyncio
async def test_all_rejected_is_a_400_with_results(collector, producer) -> None:
    response = await collector.post("/v1/items", json=[{"title": "no id"}, 7])
    assert response.status_code == 400
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (0, 2)
    assert [r["reason"] for r in body["results"]] == [
        "item_id is required",
        "an item must be a JSON object",
    ]
    assert producer.sent == []


@pytest.mark.asyncio
async def test_kafka_down_is_a_503() -> None:
    app = create_collector_app(collector_settings(), producer=DownProducer())
    async for client in client_of(app):
        response = await client.post("/v1/items", json=SHOE)
        assert response.status_code == 503
        assert response.json()["error"] == "kafka_unavailable"
        metrics = (await client.get("/metrics")).text
        assert 'collector_items_total{outcome="failed"} 1.0' in metrics


@pytest.mark.asyncio
async def test_items_need_a_write_key_when_keys_are_set(producer) -> None:
    read_key, write_key = "read-key-0123456789abcdef", "write-key-0123456789abcdef"
    settings = collector_settings(read_api_keys=[read_key], write_api_keys=[write_key])
    async for client in client_of(create_collector_app(settings, producer=producer)):
        assert (await client.post("/v1/items", json=SHOE)).status_code == 401
        refused = await client.post("/v1/items", json=SHOE, headers={"X-API-Key": read_key})
        assert refused.status_code == 403
        accepted = await client.post("/v1/items", json=SHOE, headers={"X-API-Key": write_key})
        assert accepted.status_code == 200
    assert len(producer.sent) == 1


def examples_of(schema: dict[str, Any], path: str) -> dict[str, Any]:
    body = schema["paths"][path]["post"]["requestBody"]
    assert body["required"] is True
    content = body["content"]["application/json"]
    one_or_many = content["schema"]["oneOf"]
    assert one_or_many[0]["type"] == "object"
    assert one_or_many[1]["type"] == "array"
    return {name: example["value"] for name, example in content["examples"].items()}


@pytest.mark.asyncio
async def test_openapi_documents_both_bodies_with_examples_the_contracts_accept(
    collector,
) -> None:
    schema = (await collector.get("/openapi.json")).json()
    events = examples_of(schema, "/v1/events")
    assert set(events) == {"click", "buy", "batch"}
    assert events["buy"]["recommendation_id"]
    assert isinstance(events["batch"], list)
    for example in events.values():
        for element in example if isinstance(example, list) else [example]:
            event_from_dict(element)  # raises on an example that breaks the contract
    items = examples_of(schema, "/v1/items")
    for example in items.values():
        for element in example if isinstance(example, list) else [example]:
            item_from_dict(element)
    event_schema = schema["paths"]["/v1/events"]["post"]["requestBody"]["content"][
        "application/json"
    ]["schema"]["oneOf"][0]
    assert set(event_schema["required"]) == {"event_id", "type", "user_id", "timestamp"}
    assert "forget" not in event_schema["properties"]["type"]["enum"]
    assert "click" in event_schema["properties"]["type"]["enum"]


@pytest.mark.asyncio
async def test_the_documented_body_changes_no_parsing(collector, producer) -> None:
    # Still read raw: any Content-Type, an object or a list.
    now = int(time.time() * 1000)
    event = {"event_id": "x1", "type": "click", "user_id": "u", "item_id": "i", "timestamp": now}
    response = await collector.post(
        "/v1/events", content=orjson.dumps(event), headers={"content-type": "text/plain"}
    )
    assert response.status_code == 200 and response.json()["accepted"] == 1
