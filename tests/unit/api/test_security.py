"""API keys and CORS at the edge of both services (pipeline.api.security), without servers.

The reader runs on the in-memory store with a for-you list written by the personal handler,
so a request the fast lane would answer shows whether the keys are checked before it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from pipeline.api.collector import create_collector_app
from pipeline.api.reader import create_reader_app
from pipeline.api.security import (
    COLLECTOR_ACCESS,
    READ,
    READER_ACCESS,
    WRITE,
    ApiKeyConfigError,
    ApiKeyMiddleware,
    KeyRing,
    key_ring,
    split_query_key,
)
from pipeline.core.settings import Settings
from pipeline.features.personal.agent import PersonalHandler
from pipeline.store.memory import MemoryStore
from tests.unit.api.helpers import client_of, reader_on
from tests.unit.api.test_collector import PREFIX, TOPICS_FILE, ListProducer, event
from tests.unit.features.helpers import KEYS, run, settings

READ_KEY = "read-key-0123456789abcdef"
WRITE_KEY = "write-key-0123456789abcdef"
ORIGIN = "https://shop.example"
FOR_YOU = "/v1/users/u1/recommendations"


def keyed(**overrides: Any) -> Settings:
    return settings(
        read_api_keys=[READ_KEY],
        write_api_keys=[WRITE_KEY],
        topics_file=TOPICS_FILE,
        topic_prefix=PREFIX,
        **overrides,
    )


async def reader_of(config: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A reader on an in-memory store holding u1's for-you list."""
    store = MemoryStore()
    now = int(time.time() * 1000)
    clicks = [
        {"event_id": f"e{n}", "type": "click", "user_id": f"u{n % 3}", "item_id": f"i{n % 5}"}
        for n in range(30)
    ]
    await run(
        PersonalHandler(config, KEYS),
        store,
        [{**c, "timestamp": now - 100 + i} for i, c in enumerate(clicks)],
    )
    async for client in reader_on(store, config):
        yield client


@pytest_asyncio.fixture
async def reader() -> AsyncIterator[httpx.AsyncClient]:
    async for client in reader_of(keyed(cors_origins=[ORIGIN], demo_page=True)):
        yield client


@pytest_asyncio.fixture
async def collector() -> AsyncIterator[httpx.AsyncClient]:
    app = create_collector_app(keyed(cors_origins=[ORIGIN]), producer=ListProducer())
    async for client in client_of(app):
        yield client


# --- the reader: every /v1 route is a read ---------------------------------------------------


@pytest.mark.asyncio
async def test_reader_refuses_requests_without_a_valid_key_before_the_fast_lane(reader) -> None:
    missing = await reader.get(FOR_YOU)
    assert missing.status_code == 401
    assert missing.json()["error"] == "unauthorized"
    assert "X-API-Key" in missing.json()["detail"]
    wrong = await reader.get(FOR_YOU, headers={"X-API-Key": "not-a-key-but-long-enough"})
    assert wrong.status_code == 401
    assert "not-a-key" not in wrong.text
    # A wrong header is not rescued by a right query parameter: the header wins.
    both = await reader.get(
        FOR_YOU, params={"api_key": READ_KEY}, headers={"X-API-Key": "not-a-key-at-all-x"}
    )
    assert both.status_code == 401


@pytest.mark.asyncio
@pytest.mark.parametrize("key", [READ_KEY, WRITE_KEY])
async def test_reader_serves_read_and_write_keys_by_header_or_query(reader, key: str) -> None:
    by_header = await reader.get(FOR_YOU, headers={"X-API-Key": key})
    by_query = await reader.get(FOR_YOU, params={"api_key": key, "n": 10})
    assert by_header.status_code == by_query.status_code == 200
    assert by_header.json()["items"] and by_header.json()["items"] == by_query.json()["items"]


@pytest.mark.asyncio
async def test_rank_is_a_read_on_the_reader(reader) -> None:
    response = await reader.post(
        "/v1/users/u1/rank", json={"items": ["i1", "i2"]}, headers={"X-API-Key": READ_KEY}
    )
    assert response.status_code == 200
    assert {item["item_id"] for item in response.json()["items"]} == {"i1", "i2"}


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "path", ["/healthz", "/metrics", "/docs", "/openapi.json", "/docs/assets/swagger-ui.css"]
)
async def test_reader_public_paths_need_no_key(reader, path: str) -> None:
    assert (await reader.get(path)).status_code == 200


@pytest.mark.asyncio
async def test_unknown_paths_are_protected_too(reader) -> None:
    # Deny by default: a route added later is private until declared public.
    assert (await reader.get("/v2/anything")).status_code == 401
    assert (await reader.get("//v1/users/u1/recommendations")).status_code == 401


@pytest.mark.asyncio
async def test_refusals_are_counted_in_the_metrics(reader) -> None:
    await reader.get(FOR_YOU)
    metrics = (await reader.get("/metrics")).text
    assert 'reader_requests_total{method="GET",route="unmatched",status="401"} 1.0' in metrics


# --- the collector: every /v1 route is a write, except the script ------------------------------


@pytest.mark.asyncio
async def test_collector_needs_a_write_key(collector) -> None:
    body = [event("k1")]
    assert (await collector.post("/v1/events", json=body)).status_code == 401
    read_only = await collector.post("/v1/events", json=body, headers={"X-API-Key": READ_KEY})
    assert read_only.status_code == 403
    assert read_only.json()["error"] == "forbidden"
    written = await collector.post("/v1/events", json=body, headers={"X-API-Key": WRITE_KEY})
    assert written.status_code == 200 and written.json()["accepted"] == 1
    beacon = await collector.post(
        "/v1/events",
        params={"api_key": WRITE_KEY},
        content=b'{"event_id": "k2", "type": "click", "user_id": "u", "item_id": "i", '
        + f'"timestamp": {int(time.time() * 1000)}}}'.encode(),
        headers={"content-type": "text/plain"},
    )
    assert beacon.status_code == 200 and beacon.json()["accepted"] == 1
    forget = await collector.delete("/v1/users/u1", headers={"X-API-Key": READ_KEY})
    assert forget.status_code == 403


@pytest.mark.asyncio
@pytest.mark.parametrize("path", ["/v1/sdk.js", "/healthz", "/readyz", "/docs", "/openapi.json"])
async def test_collector_public_paths_need_no_key(collector, path: str) -> None:
    assert (await collector.get(path)).status_code == 200


@pytest.mark.asyncio
async def test_collector_openapi_declares_the_key_on_writes_only(collector) -> None:
    schema = (await collector.get("/openapi.json")).json()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["ApiKeyHeader"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert schemes["ApiKeyQuery"]["name"] == "api_key"
    events = schema["paths"]["/v1/events"]["post"]
    assert {"ApiKeyHeader": []} in events["security"]
    assert "403" in events["responses"]
    assert "security" not in schema["paths"]["/v1/sdk.js"]["get"]
    assert "security" not in schema["paths"]["/healthz"]["get"]


@pytest.mark.asyncio
async def test_no_keys_means_no_authentication() -> None:
    app = create_collector_app(settings(topics_file=TOPICS_FILE), producer=ListProducer())
    async for client in client_of(app):
        assert (await client.post("/v1/events", json=[event("open")])).status_code == 200
        assert "securitySchemes" not in (await client.get("/openapi.json")).json().get(
            "components", {}
        )


# --- CORS -------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_preflights_are_answered_without_a_key(collector) -> None:
    response = await collector.options(
        "/v1/events",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-api-key, content-type",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ORIGIN
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "x-api-key" in allowed and "content-type" in allowed
    methods = response.headers["access-control-allow-methods"]
    assert {"GET", "POST", "DELETE", "OPTIONS"} <= set(methods.replace(" ", "").split(","))


@pytest.mark.asyncio
async def test_cors_headers_on_answers_and_refusals_for_allowed_origins_only(reader) -> None:
    refused = await reader.get(FOR_YOU, headers={"Origin": ORIGIN})
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == ORIGIN
    served = await reader.get(FOR_YOU, headers={"Origin": ORIGIN, "X-API-Key": READ_KEY})
    assert served.headers["access-control-allow-origin"] == ORIGIN
    other = await reader.get(FOR_YOU, headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    preflight = await reader.options(
        FOR_YOU,
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert preflight.status_code == 400


@pytest.mark.asyncio
async def test_no_origins_means_no_cors_headers() -> None:
    async for client in reader_of(keyed()):
        response = await client.get(FOR_YOU, headers={"Origin": ORIGIN, "X-API-Key": READ_KEY})
        assert response.status_code == 200
        assert "access-control-allow-origin" not in response.headers


# --- the pieces -------------------------------------------------------------------------------


def test_key_ring_roles() -> None:
    shared = "shared-key-0123456789"
    ring = KeyRing([READ_KEY, shared], [WRITE_KEY, shared])
    assert ring.role_of(READ_KEY.encode()) == READ
    assert ring.role_of(WRITE_KEY.encode()) == WRITE
    assert ring.role_of(shared.encode()) == WRITE
    assert ring.role_of(READ_KEY.encode()[:-1]) is None
    assert ring.role_of(b"") is None


@pytest.mark.parametrize(
    "bad", ["short", "has a space in it....", "tab\there-0123456789", "é" * 20]
)
def test_malformed_keys_are_refused_without_showing_them(bad: str) -> None:
    with pytest.raises(ApiKeyConfigError) as caught:
        KeyRing([READ_KEY], [WRITE_KEY, bad])
    message = str(caught.value)
    assert "PIPELINE_WRITE_API_KEYS" in message and "key 2 of 2" in message
    assert bad not in message


def test_required_keys_and_useless_ones_stop_the_service() -> None:
    with pytest.raises(ApiKeyConfigError, match="PIPELINE_REQUIRE_API_KEYS"):
        key_ring(settings(require_api_keys=True), READER_ACCESS)
    with pytest.raises(ApiKeyConfigError, match="PIPELINE_WRITE_API_KEYS"):
        key_ring(settings(require_api_keys=True, read_api_keys=[READ_KEY]), COLLECTOR_ACCESS)
    with pytest.raises(ApiKeyConfigError, match="read keys only"):
        key_ring(settings(read_api_keys=[READ_KEY]), COLLECTOR_ACCESS)
    with pytest.raises(ApiKeyConfigError):
        create_reader_app(settings(require_api_keys=True))
    assert key_ring(settings(require_api_keys=True, read_api_keys=[READ_KEY]), READER_ACCESS)
    assert key_ring(settings(write_api_keys=[WRITE_KEY]), READER_ACCESS)
    assert key_ring(settings(), READER_ACCESS) is None


@pytest.mark.parametrize(
    ("query", "key", "rest"),
    [
        (b"n=3&api_key=abc&kind=x", b"abc", b"n=3&kind=x"),
        (b"api_key=a%2Bb+c", b"a+b c", b""),
        (b"api_key=first&api_key=second&n=1", b"first", b"n=1"),
        (b"n=3&my_api_key=abc", None, b"n=3&my_api_key=abc"),
    ],
)
def test_split_query_key(query: bytes, key: bytes | None, rest: bytes) -> None:
    assert split_query_key(query) == (key, rest)


@pytest.mark.asyncio
async def test_the_key_never_reaches_the_app_nor_the_access_log() -> None:
    seen: list[bytes] = []
    sent: list[dict] = []

    async def app(scope: dict, receive: Any, send: Any) -> None:
        seen.append(scope["query_string"])
        await send({"type": "http.response.start", "status": 204, "headers": []})

    async def send(message: dict) -> None:
        sent.append(message)

    async def receive() -> dict:
        return {"type": "http.request", "body": b""}

    middleware = ApiKeyMiddleware(app, KeyRing([READ_KEY], []), READER_ACCESS)
    query = f"n=3&api_key={READ_KEY}".encode()
    scope = {"type": "http", "method": "GET", "path": FOR_YOU, "headers": [], "query_string": query}
    await middleware(scope, receive, send)
    assert seen == [b"n=3"] and sent[0]["status"] == 204
    # The server's access log prints the query string of the scope it passed: the same dict.
    assert scope["query_string"] == b"n=3"
    wrong = {**scope, "query_string": f"api_key={READ_KEY}x".encode()}
    await middleware(wrong, receive, send)
    assert sent[-1]["body"] and READ_KEY.encode() not in sent[-1]["body"]
    assert wrong["query_string"] == b""


@pytest.mark.asyncio
async def test_without_keys_the_query_key_is_dropped_and_everything_passes() -> None:
    seen: list[bytes] = []

    async def app(scope: dict, receive: Any, send: Any) -> None:
        seen.append(scope["query_string"])

    middleware = ApiKeyMiddleware(app, None, COLLECTOR_ACCESS)
    for query in (b"api_key=whatever&n=2", b"n=2"):
        scope = {"type": "http", "method": "POST", "path": "/v1/events", "headers": []}
        await middleware({**scope, "query_string": query}, None, None)  # type: ignore[arg-type]
    assert seen == [b"n=2", b"n=2"]
