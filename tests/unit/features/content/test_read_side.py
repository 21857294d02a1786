"""``GET /v1/items/{item_id}/related?relation=similar_content`` on the reader (fast lane and
FastAPI alike, ids with ``/``, ``n`` bounded by what is stored, unavailable items left out),
and a scenario stage naming the relation."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from pipeline.features.catalog.agent import CatalogHandler
from pipeline.features.catalog.read import Availability
from pipeline.features.content.agent import ContentHandler
from pipeline.features.scenarios.read import Reader, recommend
from pipeline.features.scenarios.request import parse_request
from pipeline.features.scenarios.spec import parse_scenarios
from pipeline.store.memory import MemoryStore
from tests.unit.api.helpers import reader_on
from tests.unit.features.helpers import KEYS, T0_MS, run, settings

ITEMS = [
    {"item_id": "shoes/red-1", "title": "Red leather running shoe"},
    {"item_id": "shoes/red-2", "title": "Red running shoe for trail"},
    {"item_id": "shoes/red-3", "title": "Red shoe", "available": False},
    {"item_id": "hat-1", "title": "Blue wool hat"},
]
CONFIG = settings(content_neighbours=5)


async def content_store() -> MemoryStore:
    store = MemoryStore()
    await run(CatalogHandler(KEYS), store, ITEMS)
    await run(ContentHandler(CONFIG, KEYS), store, ITEMS)
    return store


@pytest_asyncio.fixture
async def reader() -> AsyncIterator[httpx.AsyncClient]:
    store = await content_store()
    async for client in reader_on(store, CONFIG):
        yield client


@pytest.mark.asyncio
@pytest.mark.parametrize("item", ["shoes/red-2", "shoes%2Fred-2"])
@pytest.mark.parametrize("lane", ["", "&ignored=1"], ids=["fast", "fastapi"])
async def test_similar_content_of_an_item(reader, item: str, lane: str) -> None:
    response = await reader.get(f"/v1/items/{item}/related?relation=similar_content&n=3{lane}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["item_id"] == "shoes/red-2" and body["relation"] == "similar_content"
    # The closest title first; the unavailable shoe and the unrelated hat are not listed.
    assert [entry["item_id"] for entry in body["items"]] == ["shoes/red-1"]
    assert body["items"][0]["source"] == {
        "model": "content",
        "relation": "similar_content",
        "source_items": ["shoes/red-2"],
    }


@pytest.mark.asyncio
@pytest.mark.parametrize("lane", ["", "&ignored=1"], ids=["fast", "fastapi"])
async def test_n_is_bounded_by_the_neighbours_stored(reader, lane: str) -> None:
    response = await reader.get(f"/v1/items/hat-1/related?relation=similar_content&n=6{lane}")
    assert response.status_code == 422
    assert "PIPELINE_CONTENT_NEIGHBOURS" in response.text
    # The learned relations keep their own, larger limit.
    response = await reader.get(f"/v1/items/hat-1/related?relation=also_clicked&n=6{lane}")
    assert response.status_code == 200
    response = await reader.get(f"/v1/items/hat-1/related?relation=similar_text{lane}")
    assert response.status_code == 422 and "similar_content" in response.text


@pytest.mark.asyncio
async def test_a_scenario_stage_serves_items_similar_to_the_context_item() -> None:
    store = await content_store()
    spec = {
        "stages": [
            {
                "name": "similar",
                "sources": [{"source": "related", "relation": "similar_content"}],
            }
        ]
    }
    scenario = parse_scenarios({"scenarios": {"s": spec}}, "test.yaml")["s"]  # type: ignore[arg-type]
    reader = Reader(store, KEYS, CONFIG, Availability(KEYS))
    body = await recommend(reader, parse_request(scenario, [("item_id", "shoes/red-1")]), T0_MS)
    assert [item["item_id"] for item in body["items"]] == ["shoes/red-2"]
    source = body["items"][0]["source"]
    assert source["model"] == "content" and source["source_items"] == ["shoes/red-1"]
