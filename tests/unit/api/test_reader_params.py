"""Parameter validation of the reader (pipeline.api.reader), without servers.

The reader's store points at a closed port, so any Redis call would show up as 503: every
answer here is given before any Redis call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from pipeline.api.reader import create_reader_app
from pipeline.core.settings import load_settings
from pipeline.tools.local import free_port
from tests.unit.api.helpers import client_of


@pytest_asyncio.fixture
async def reader() -> AsyncIterator[httpx.AsyncClient]:
    settings = load_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    async for client in client_of(create_reader_app(settings)):
        yield client


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("window=2h", "allowed: 1h, 1d, 7d"),
        ("kind=views", "allowed: clicks, conversions"),
        ("category=a%20b", "category"),
        ("n=0", "n"),
        ("n=501", "n"),
        ("n=ten", "n"),
    ],
)
async def test_reader_rejects_bad_parameters(reader, query: str, expected: str) -> None:
    response = await reader.get(f"/v1/trending?{query}")
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid_parameter"
    assert expected in body["detail"]


@pytest.mark.asyncio
async def test_reader_health_and_openapi_without_redis(reader) -> None:
    assert (await reader.get("/healthz")).json() == {"status": "ok"}
    schema = (await reader.get("/openapi.json")).json()
    assert schema["info"]["title"] == "Recommendation reader"
    parameters = schema["paths"]["/v1/trending"]["get"]["parameters"]
    window = next(p for p in parameters if p["name"] == "window")
    assert window["schema"]["enum"] == ["1h", "1d", "7d"]


@pytest.mark.asyncio
async def test_reader_refuses_oversize_bodies_before_parsing(reader) -> None:
    huge = {"items": ["item"] * 100_000, "context": {}}
    response = await reader.post("/v1/users/u1/rank", json=huge)
    assert response.status_code == 413
    assert response.json()["error"] == "body_too_large"


@pytest.mark.asyncio
async def test_reader_answers_unknown_paths_and_methods_in_the_error_shape(reader) -> None:
    missing = await reader.get("/v1/nothing-here")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    wrong = await reader.delete("/v1/trending")
    assert wrong.status_code == 405 and wrong.json()["error"] == "method_not_allowed"


@pytest.mark.asyncio
async def test_rank_refuses_a_huge_number_in_the_context(reader) -> None:
    response = await reader.post(
        "/v1/users/u1/rank",
        content=b'{"items": ["a"], "context": {"n": 1' + b"0" * 400 + b"}}",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422 and "too large" in response.json()["detail"]
