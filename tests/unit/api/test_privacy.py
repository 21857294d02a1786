"""``DELETE /v1/users/{user_id}`` on the collector (pipeline.api.privacy), without servers: the
answer, the ``forget`` event it produces and where to, and its refusals."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
import pytest_asyncio

from pipeline.api.collector import create_collector_app
from pipeline.core.events import parse_message
from tests.unit.api.helpers import client_of
from tests.unit.api.test_collector import PREFIX, DownProducer, ListProducer, collector_settings

pytestmark = pytest.mark.asyncio

WRITE_KEY = "write-key-0123456789abcdef"


@pytest.fixture
def producer() -> ListProducer:
    return ListProducer()


@pytest_asyncio.fixture
async def collector(producer: ListProducer) -> AsyncIterator[httpx.AsyncClient]:
    async for client in client_of(create_collector_app(collector_settings(), producer=producer)):
        yield client


async def test_a_delete_produces_a_forget_keyed_by_the_user(collector, producer) -> None:
    before = int(time.time() * 1000)
    response = await collector.delete("/v1/users/shop:42")
    assert response.status_code == 202
    body = response.json()
    assert body["user_id"] == "shop:42" and body["status"] == "accepted"
    [(topic, key, value)] = producer.sent
    assert topic == f"{PREFIX}events.profile"
    assert key == b"shop:42"
    # What the agents get passes the event contract as it is.
    [event], rejections = parse_message(value)
    assert rejections == []
    assert (event.event_type, event.user_id, event.event_id) == (
        "forget",
        "shop:42",
        body["event_id"],
    )
    assert before <= event.timestamp_ms <= int(time.time() * 1000)
    assert set(orjson.loads(value)) == {"event_id", "type", "user_id", "timestamp"}


async def test_every_request_is_a_new_event(collector, producer) -> None:
    first = (await collector.delete("/v1/users/u1")).json()["event_id"]
    second = (await collector.delete("/v1/users/u1")).json()["event_id"]
    # The same event id twice would be dropped by de-duplication: a repeated request (the
    # user came back and left again) must be applied again.
    assert first != second and len(producer.sent) == 2


@pytest.mark.parametrize("path", ["/v1/users/anon/7f3a", "/v1/users/anon%2F7f3a"])
async def test_ids_with_a_slash_escaped_or_not(collector, producer, path: str) -> None:
    response = await collector.delete(path)
    assert response.status_code == 202, response.text
    assert response.json()["user_id"] == "anon/7f3a"
    assert producer.sent[0][1] == b"anon/7f3a"


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/v1/users/a%20b", "user_id may contain only"),
        ("/v1/users/%7Bu1%7D", "user_id may contain only"),
        ("/v1/users/" + "u" * 129, "user_id must be 1-128 characters"),
    ],
)
async def test_an_invalid_id_is_422_and_nothing_is_sent(
    collector, producer, path: str, reason: str
) -> None:
    response = await collector.delete(path)
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_parameter"
    assert response.json()["detail"].startswith(reason)
    assert producer.sent == []


async def test_an_empty_id_is_422(collector, producer) -> None:
    response = await collector.delete("/v1/users/")
    assert response.status_code == 422
    assert response.json()["detail"].startswith("user_id must be 1-128 characters")
    assert producer.sent == []


async def test_kafka_down_is_503() -> None:
    app = create_collector_app(collector_settings(), producer=DownProducer())
    async for client in client_of(app):
        response = await client.delete("/v1/users/u1")
        assert response.status_code == 503
        assert response.json()["error"] == "kafka_unavailable"
        assert "resend" in response.json()["detail"]


async def test_with_keys_configured_a_delete_needs_the_write_key(producer) -> None:
    app = create_collector_app(collector_settings(write_api_keys=[WRITE_KEY]), producer=producer)
    async for client in client_of(app):
        assert (await client.delete("/v1/users/u1")).status_code == 401
        assert producer.sent == []
        allowed = await client.delete("/v1/users/u1", headers={"X-API-Key": WRITE_KEY})
        assert allowed.status_code == 202
        assert len(producer.sent) == 1


async def test_the_route_is_documented(collector) -> None:
    schema = (await collector.get("/openapi.json")).json()
    operation = schema["paths"]["/v1/users/{user_id}"]["delete"]
    assert {"202", "422", "503"} <= set(operation["responses"])
