"""The reader's fast lane answers what the FastAPI routes answer, only sooner, and leaves
everything else (malformed requests, errors) to them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from pipeline.api.fast import FastRoute, query_params, small_int
from pipeline.features.catalog.agent import CatalogHandler
from pipeline.features.personal.agent import PersonalHandler
from pipeline.features.trending.agent import TrendingHandler
from pipeline.store.base import Reads
from pipeline.store.memory import MemoryStore
from tests.unit.api.helpers import reader_on
from tests.unit.features.helpers import KEYS, run, settings


class DownStore(MemoryStore):
    """A store whose reads fail as Redis does when it is unreachable."""

    async def read(self, reads: Reads) -> list[Any]:
        raise ConnectionError("connection refused")

    transient_errors = (ConnectionError,)


@pytest_asyncio.fixture
async def reader() -> AsyncIterator[httpx.AsyncClient]:
    import time

    now = int(time.time() * 1000)
    store = MemoryStore()
    await run(CatalogHandler(KEYS), store, [{"item_id": "gone", "available": False}])
    events = [
        {
            "event_id": f"e{n}",
            "type": "click",
            "user_id": f"u{n % 3}",
            "item_id": f"i{n % 5}",
            "timestamp": now - 1000 + n,
        }
        for n in range(30)
    ]
    events.append(
        {"event_id": "g", "type": "click", "user_id": "u9", "item_id": "gone", "timestamp": now}
    )
    await run(TrendingHandler(settings(), KEYS), store, events)
    await run(PersonalHandler(settings(), KEYS), store, events)
    async for client in reader_on(store):
        yield client


def without_time(body: dict) -> dict:
    """The body without what changes with the clock: the time, and decaying scores (kept to
    three significant digits)."""
    out = {key: value for key, value in body.items() if key != "generated_at"}
    out["items"] = [{**item, "score": float(f"{item['score']:.3g}")} for item in body["items"]]
    return out


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "path",
    [
        "/v1/users/u1/recommendations?n=3",
        "/v1/users/nobody/recommendations",
        "/v1/trending?kind=clicks&window=1h&n=4",
        "/v1/trending?window=1d",
        "/v1/items/i1/related?relation=also_clicked&n=2",
        "/v1/items/i2/related",
    ],
)
async def test_the_fast_lane_answers_as_the_route_does(reader, path: str) -> None:
    fast = await reader.get(path)
    # An extra parameter makes the fast lane step aside; FastAPI ignores it.
    slow = await reader.get(path + ("&" if "?" in path else "?") + "ignored=1")
    assert fast.status_code == slow.status_code == 200
    assert without_time(fast.json()) == without_time(slow.json())
    assert fast.headers["content-type"] == "application/json"
    items = fast.json()["items"]
    assert "gone" not in [item["item_id"] for item in items]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("path", "status", "error"),
    [
        ("/v1/users/u1/recommendations?n=0", 422, "invalid_parameter"),
        ("/v1/users/u1/recommendations?n=9999999999", 422, "invalid_parameter"),
        ("/v1/users/u%201/recommendations", 422, "invalid_parameter"),
        ("/v1/trending?kind=views", 422, "invalid_parameter"),
        ("/v1/items/i1/related?relation=nope", 422, "invalid_parameter"),
    ],
)
async def test_malformed_requests_get_the_routes_errors(reader, path, status, error) -> None:
    response = await reader.get(path)
    assert response.status_code == status
    assert response.json()["error"] == error


@pytest.mark.asyncio
async def test_a_store_outage_is_a_503_in_the_error_shape() -> None:
    async for client in reader_on(DownStore()):
        response = await client.get("/v1/users/u1/recommendations")
        assert response.status_code == 503
        assert response.json()["error"] == "redis_unavailable"


@pytest.mark.asyncio
async def test_fast_requests_are_counted_by_route_template(reader) -> None:
    await reader.get("/v1/users/u1/recommendations")
    metrics = (await reader.get("/metrics")).text
    assert (
        'reader_requests_total{method="GET",route="/v1/users/{user_id}/recommendations",'
        'status="200"} 1.0' in metrics
    )


def test_route_matching_and_parameter_parsing() -> None:
    async def handler(ctx: Any, path: dict, query: dict) -> bytes | None:
        return None

    route = FastRoute("/v1/items/{item_id}/related", handler)
    # Paths arrive decoded (a %2F is already a "/"): the id is everything in between.
    assert route.match("/v1/items/a/b/related") == {"item_id": "a/b"}
    assert route.match("/v1/items/a/segment") is None
    assert route.match("/v1/items/related") is None
    assert query_params(b"n=3&kind=clicks") == {"n": "3", "kind": "clicks"}
    assert query_params(b"n=3&n=4") is None
    assert [small_int(v, 10, 1, 500) for v in (None, "1", "500", "0", "501", "-1", "1e3")] == [
        10,
        1,
        500,
        None,
        None,
        None,
        None,
    ]
