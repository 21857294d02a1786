"""Request handling of the collector (pipeline.api.collector), without servers.

The collector gets an in-memory producer: these tests check HTTP handling and routing, not
Kafka.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import pytest_asyncio
from aiokafka.errors import KafkaConnectionError

from pipeline.api.collector import create_collector_app
from pipeline.core.settings import load_settings
from tests.unit.api.helpers import client_of

TOPICS_FILE = Path(__file__).resolve().parents[3] / "topics.yaml"
PREFIX = "unit."


class ListProducer:
    """Records what would have been produced."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []

    async def send_and_wait(self, topic: str, value: bytes, key: bytes) -> None:
        self.sent.append((topic, key, value))


class DownProducer:
    """A producer whose broker never acknowledges."""

    async def send_and_wait(self, topic: str, value: bytes, key: bytes) -> None:
        raise KafkaConnectionError("broker unreachable")


def collector_settings(**overrides: Any):
    return load_settings(topics_file=TOPICS_FILE, topic_prefix=PREFIX, **overrides)


@pytest.fixture
def producer() -> ListProducer:
    return ListProducer()


@pytest_asyncio.fixture
async def collector(producer: ListProducer) -> AsyncIterator[httpx.AsyncClient]:
    settings = collector_settings(collector_max_events=5, collector_max_body_bytes=2048)
    async for client in client_of(create_collector_app(settings, producer=producer)):
        yield client


def event(event_id: str, event_type: str = "click", **fields: Any) -> dict[str, Any]:
    base = {
        "event_id": event_id,
        "type": event_type,
        "user_id": "u1",
        "item_id": "i1",
        "timestamp": int(time.time() * 1000),
    }
    return {**base, **fields}


@pytest.mark.asyncio
async def test_mixed_batch_reports_each_event(collector, producer) -> None:
    batch = [event("e1"), {"type": "click"}, event("e3", "rate", value=9), event("e4", "buy")]
    response = await collector.post("/v1/events", json=batch)
    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (2, 2)
    assert [r["index"] for r in body["results"]] == [0, 1, 2, 3]
    assert body["results"][0] == {"index": 0, "event_id": "e1", "status": "accepted"}
    assert body["results"][1]["status"] == "rejected"
    assert "event_id" in body["results"][1]["reason"]
    assert "1-5" in body["results"][2]["reason"]
    assert [orjson.loads(value)["event_id"] for _, _, value in producer.sent] == ["e1", "e4"]


@pytest.mark.asyncio
async def test_routing_key_and_value(collector, producer) -> None:
    response = await collector.post(
        "/v1/events", json=[event("c1"), event("r1", "rate", value=5, user_id="u2")]
    )
    assert response.status_code == 200
    (click_topic, click_key, click_value), (rate_topic, rate_key, _) = producer.sent
    assert click_topic == f"{PREFIX}events.clicks"
    assert rate_topic == f"{PREFIX}events.conversions"
    assert (click_key, rate_key) == (b"u1", b"u2")
    assert orjson.loads(click_value)["type"] == "click"


@pytest.mark.asyncio
async def test_single_object_body(collector, producer) -> None:
    response = await collector.post("/v1/events", json=event("solo", "login", previous_user_id="a"))
    assert response.status_code == 200
    assert response.json()["accepted"] == 1
    assert producer.sent[0][0] == f"{PREFIX}events.profile"


@pytest.mark.asyncio
async def test_all_rejected_is_400_with_results(collector, producer) -> None:
    response = await collector.post("/v1/events", json=[{"nope": 1}, 42])
    assert response.status_code == 400
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (0, 2)
    assert all(r["status"] == "rejected" and r["reason"] for r in body["results"])
    assert producer.sent == []


@pytest.mark.asyncio
async def test_future_timestamp_rejected(collector) -> None:
    future = int(time.time() * 1000) + 3_600_000
    response = await collector.post("/v1/events", json=[event("f1", timestamp=future)])
    assert response.status_code == 400
    assert "future" in response.json()["results"][0]["reason"]


@pytest.mark.asyncio
async def test_non_json_is_400(collector, producer) -> None:
    response = await collector.post("/v1/events", content=b"{not json")
    assert response.status_code == 400
    assert "JSON" in response.json()["detail"]
    empty = await collector.post("/v1/events", json=[])
    assert empty.status_code == 400
    assert producer.sent == []


@pytest.mark.asyncio
async def test_oversize_body_is_413(collector, producer) -> None:
    big = [event(f"e{i}", context={"pad": "x" * 250, "more": "y" * 250}) for i in range(5)]
    response = await collector.post("/v1/events", json=big)
    assert response.status_code == 413
    assert "2048" in response.json()["detail"]
    assert producer.sent == []


@pytest.mark.asyncio
async def test_oversize_chunked_body_without_length_is_413(collector, producer) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b" " * 500

    response = await collector.post("/v1/events", content=chunks())
    assert response.status_code == 413
    assert producer.sent == []


@pytest.mark.asyncio
async def test_too_many_events(collector, producer) -> None:
    response = await collector.post("/v1/events", json=[event(f"e{i}") for i in range(6)])
    assert response.status_code == 413
    assert "at most 5" in response.json()["detail"]
    assert producer.sent == []


@pytest.mark.asyncio
async def test_kafka_down_is_503() -> None:
    app = create_collector_app(collector_settings(), producer=DownProducer())
    async for client in client_of(app):
        response = await client.post("/v1/events", json=[event("e1")])
        assert response.status_code == 503
        assert "resend" in response.json()["detail"]
        # Rejections alone need no Kafka.
        assert (await client.post("/v1/events", json=[{}])).status_code == 400


@pytest.mark.asyncio
async def test_collector_probes_metrics_and_openapi(collector) -> None:
    assert (await collector.get("/healthz")).json() == {"status": "ok"}
    assert (await collector.get("/readyz")).json() == {"status": "ready"}
    await collector.post("/v1/events", json=[event("m1"), {}])
    metrics = (await collector.get("/metrics")).text
    assert 'collector_requests_total{method="POST",route="/v1/events",status="200"} 1.0' in metrics
    assert 'collector_events_total{outcome="rejected"} 1.0' in metrics
    schema = (await collector.get("/openapi.json")).json()
    assert schema["info"]["title"] == "Event collector"
    assert "/v1/events" in schema["paths"]
