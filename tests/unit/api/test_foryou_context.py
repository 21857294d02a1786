"""``GET /v1/users/{user_id}/recommendations`` with a request context: the click model
re-ranks the stored list in that context."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
import pytest_asyncio

from pipeline.features.catalog.agent import CatalogHandler
from pipeline.features.ranking.agent import RankingHandler
from pipeline.store.base import Writes
from pipeline.store.memory import MemoryStore
from tests.unit.api.helpers import reader_on
from tests.unit.features.helpers import KEYS, run, settings

pytestmark = pytest.mark.asyncio

STORED = ["web-1", "phone-1", "other-1", "other-2"]


@pytest_asyncio.fixture
async def reader() -> AsyncIterator[httpx.AsyncClient]:
    now = int(time.time() * 1000)
    store = MemoryStore()
    # On phones u1 clicks phone-1, on the web web-1 (both shown in the same lists).
    events = []
    for n in range(40):
        device = "mobile" if n % 2 else "web"
        clicked = "phone-1" if device == "mobile" else "web-1"
        context = {"device": device}
        events.append(
            {
                "event_id": f"s{n}",
                "type": "impression",
                "user_id": "u1",
                "items": STORED,
                "timestamp": now - 60_000 + n,
                "context": context,
            }
        )
        events.append(
            {
                "event_id": f"c{n}",
                "type": "click",
                "user_id": "u1",
                "item_id": clicked,
                "timestamp": now - 60_000 + n,
                "context": {**context, "position": STORED.index(clicked)},
            }
        )
    # The click model crosses the device with the item's categories.
    catalog = [{"item_id": item, "categories": [item.split("-")[0]]} for item in STORED]
    await run(CatalogHandler(KEYS), store, catalog)
    await run(RankingHandler(settings(), KEYS), store, events)
    # The stored for-you list, as the personal agent writes it.
    stored = [
        {
            "item_id": item,
            "score": 1.0 - k / 10,
            "source": {"model": "for_you", "stage": "personal"},
        }
        for k, item in enumerate(STORED)
    ]
    await store.apply(Writes().set(KEYS.foryou("u1"), orjson.dumps(stored)))
    async for client in reader_on(store):
        yield client


async def ids(reader: httpx.AsyncClient, **params: str) -> list[str]:
    response = await reader.get("/v1/users/u1/recommendations", params=params)
    assert response.status_code == 200, response.text
    return [item["item_id"] for item in response.json()["items"]]


async def test_the_context_reorders_the_list_with_the_click_model(reader) -> None:
    assert await ids(reader, n="4") == STORED
    assert (await ids(reader, n="4", **{"context.device": "mobile"}))[0] == "phone-1"
    assert (await ids(reader, n="4", **{"context.device": "web"}))[0] == "web-1"
    # The same as a JSON object; the named key wins over it.
    assert (await ids(reader, n="4", context='{"device": "mobile"}'))[0] == "phone-1"
    both = {"context": '{"device": "mobile"}', "context.device": "web"}
    assert (await ids(reader, n="4", **both))[0] == "web-1"
    body = (
        await reader.get("/v1/users/u1/recommendations", params={"n": 2, "context.device": "web"})
    ).json()
    assert len(body["items"]) == 2 and body["context"] == {"device": "web"}
    source = body["items"][0]["source"]
    assert source["stage"] == "personal" and source["rerank"]["model"] == "ranking"
    assert 0 < source["rerank"]["score"] < 1


async def test_a_bad_context_or_parameter_is_a_4xx_with_a_message(reader) -> None:
    for params in ({"context": "not json"}, {"context": "[1]"}, {"context.": "x"}):
        response = await reader.get("/v1/users/u1/recommendations", params=params)
        assert 400 <= response.status_code < 500, params
        assert response.json()["detail"], params


async def test_an_anonymous_id_that_logged_in_is_ranked_as_the_user_it_became() -> None:
    """u1 and u2 see the same lists and click the other of two items every time: only
    their own (user x item) weights tell them apart. Ids that logged in as them read their
    lists and are re-ranked with their weights, not with the anonymous id's (none), and so
    does ``POST /v1/users/{id}/rank``."""
    now = int(time.time() * 1000)
    store = MemoryStore()
    shown = ["other-1", "other-2"]
    picks = {"u1": "other-2", "u2": "other-1"}
    events = []
    for n in range(40):
        for user, clicked in picks.items():
            at = now - 60_000 + n
            events.append(
                {
                    "event_id": f"s{user}{n}",
                    "type": "impression",
                    "user_id": user,
                    "items": shown,
                    "timestamp": at,
                    "context": {"device": "web"},
                }
            )
            events.append(
                {
                    "event_id": f"c{user}{n}",
                    "type": "click",
                    "user_id": user,
                    "item_id": clicked,
                    "timestamp": at,
                    "context": {"device": "web", "position": shown.index(clicked)},
                }
            )
    await run(RankingHandler(settings(), KEYS), store, events)
    stored = [{"item_id": item, "score": 1.0, "source": {"model": "for_you"}} for item in shown]
    writes = Writes()
    for user in picks:
        writes.set(KEYS.foryou(user), orjson.dumps(stored))
        writes.set(KEYS.user_alias(f"anon-{user}"), user)
    await store.apply(writes)
    async for client in reader_on(store):
        for user, clicked in picks.items():
            for asking in (user, f"anon-{user}"):
                response = await client.get(
                    f"/v1/users/{asking}/recommendations", params={"n": 2, "context.device": "web"}
                )
                assert response.status_code == 200, response.text
                assert response.json()["items"][0]["item_id"] == clicked, asking
                # The rank endpoint agrees.
                response = await client.post(
                    f"/v1/users/{asking}/rank",
                    json={"items": shown, "context": {"device": "web"}},
                )
                assert response.status_code == 200, response.text
                assert response.json()["items"][0]["item_id"] == clicked, asking
