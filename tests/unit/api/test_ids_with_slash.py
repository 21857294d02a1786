"""Ids may contain ``/`` (pipeline.core.ids): every reader route with an id in its path answers
for them, sent as is or percent-encoded (``%2F``), on the fast lane and on FastAPI alike."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from pipeline.api.fast import FastRoute
from pipeline.features.catalog.agent import CatalogHandler
from pipeline.features.personal.agent import PersonalHandler
from pipeline.features.segments.agent import SegmentsHandler
from pipeline.features.trending.agent import TrendingHandler
from pipeline.store.memory import MemoryStore
from tests.unit.api.helpers import reader_on
from tests.unit.features.helpers import KEYS, run, settings

USER = "shop/u1"
ITEM = "shoes/red-1"
PARTNER = "shoes/blue-2"


def spellings(identifier: str) -> list[str]:
    """The id as a client may put it in a path: as is, and with ``/`` as ``%2F``."""
    return [identifier, identifier.replace("/", "%2F")]


@pytest_asyncio.fixture
async def reader() -> AsyncIterator[httpx.AsyncClient]:
    config = settings()
    store = MemoryStore()
    now = int(time.time() * 1000)
    await run(
        CatalogHandler(KEYS),
        store,
        [{"item_id": ITEM, "categories": ["shoes"]}, {"item_id": PARTNER, "categories": ["shoes"]}],
    )
    # Three users click both shoes: each is the other's "also clicked".
    events = [
        {
            "event_id": f"e{u}{i}",
            "type": "click",
            "user_id": f"shop/u{u}",
            "item_id": item,
            "timestamp": now - 1000 + 10 * u + i,
        }
        for u in range(1, 4)
        for i, item in enumerate((ITEM, PARTNER))
    ]
    for handler in (
        TrendingHandler(config, KEYS),
        PersonalHandler(config, KEYS),
        SegmentsHandler(config, KEYS),
    ):
        await run(handler, store, events)
    async for client in reader_on(store, config):
        yield client


def ids(body: dict, field: str = "items", key: str = "item_id") -> list[str]:
    return [entry[key] for entry in body[field]]


@pytest.mark.asyncio
@pytest.mark.parametrize("user", spellings(USER))
@pytest.mark.parametrize("lane", ["", "&ignored=1"], ids=["fast", "fastapi"])
async def test_recommendations_of_a_user_id_with_a_slash(reader, user: str, lane: str) -> None:
    response = await reader.get(f"/v1/users/{user}/recommendations?n=5{lane}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user_id"] == USER
    assert body["stage"] != "fallback"  # the user's own list was found


@pytest.mark.asyncio
@pytest.mark.parametrize("item", spellings(ITEM))
@pytest.mark.parametrize("lane", ["", "&ignored=1"], ids=["fast", "fastapi"])
async def test_related_items_of_an_item_id_with_a_slash(reader, item: str, lane: str) -> None:
    response = await reader.get(f"/v1/items/{item}/related?relation=also_clicked{lane}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["item_id"] == ITEM
    assert ids(body) == [PARTNER]


@pytest.mark.asyncio
@pytest.mark.parametrize("item", spellings(ITEM))
async def test_segment_of_an_item_id_with_a_slash(reader, item: str) -> None:
    response = await reader.get(f"/v1/items/{item}/segment")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["item_id"] == ITEM
    assert set(ids(body, "users", "user_id")) == {"shop/u1", "shop/u2", "shop/u3"}


@pytest.mark.asyncio
@pytest.mark.parametrize("user", spellings(USER))
async def test_rank_for_a_user_id_with_a_slash(reader, user: str) -> None:
    response = await reader.post(f"/v1/users/{user}/rank", json={"items": [ITEM, PARTNER]})
    assert response.status_code == 200, response.text
    assert response.json()["user_id"] == USER
    assert set(ids(response.json())) == {ITEM, PARTNER}


@pytest.mark.asyncio
async def test_a_double_encoded_slash_is_not_decoded_twice(reader) -> None:
    # %252F is a literal "%2F" in the id: not a valid id, on either lane.
    response = await reader.get("/v1/users/shop%252Fu1/recommendations")
    assert response.status_code == 422
    assert "user_id" in response.json()["detail"]


@pytest.mark.asyncio
async def test_slash_ids_are_counted_under_the_route_template(reader) -> None:
    await reader.get(f"/v1/users/{USER}/recommendations")
    await reader.get(f"/v1/users/{USER}/recommendations?ignored=1")
    metrics = (await reader.get("/metrics")).text
    label = 'reader_requests_total{method="GET",route="/v1/users/{user_id}/recommendations"'
    assert f'{label},status="200"}} 2.0' in metrics


def test_fast_routes_take_every_segment_between_head_and_tail() -> None:
    async def handler(ctx: object, path: dict, query: dict) -> bytes | None:
        return None

    route = FastRoute("/v1/items/{item_id:path}/related", handler)
    assert route.path_format == "/v1/items/{item_id}/related"
    assert route.match("/v1/items/a/related") == {"item_id": "a"}
    assert route.match("/v1/items/a/b/c/related") == {"item_id": "a/b/c"}
    # The same greedy choice as FastAPI's {item_id:path}.
    assert route.match("/v1/items/a/related/related") == {"item_id": "a/related"}
    assert route.match("/v1/items//related") is None
    assert route.match("/v1/items/a/segment") is None
    assert route.match("//v1/items/a/related") is None
    plain = FastRoute("/v1/trending", handler)
    assert plain.match("/v1/trending") == {}
    assert plain.match("/v1/trending/") is None
