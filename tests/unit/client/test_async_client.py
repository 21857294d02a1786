"""The async client has the sync client's API: same requests, same results."""

from __future__ import annotations

import time

import httpx
import pytest

from pipeline.client import AsyncClient, Client
from tests.unit.client.helpers import COLLECTOR, READER, Server, answer, batch

pytestmark = pytest.mark.asyncio

PUBLIC = [
    "track",
    "publish_items",
    "forget_user",
    "recommend",
    "for_you",
    "related",
    "trending",
    "rank",
    "scenarios",
    "stats",
    "close",
]


async def test_both_clients_offer_the_same_methods_with_the_same_parameters():
    import inspect

    for name in PUBLIC:
        sync_signature = inspect.signature(getattr(Client, name))
        async_method = getattr(AsyncClient, name)
        assert inspect.iscoroutinefunction(async_method), name
        assert inspect.signature(async_method).parameters == sync_signature.parameters, name


async def test_async_track_fills_ids_and_returns_the_results():
    body = batch([{"index": 0, "event_id": "x", "status": "accepted"}])
    server = Server(answer(200, body))
    before = int(time.time() * 1000)
    async with server.async_client() as client:
        result = await client.track({"type": "buy", "user_id": "u", "item_id": "i"})
    sent = server.sent()
    assert result.accepted == 1
    assert len(sent) == 1 and len(sent[0]["event_id"]) == 32
    assert sent[0]["timestamp"] >= before
    assert str(server.requests[0].url) == f"{COLLECTOR}/v1/events"


async def test_async_reads_and_writes_send_the_same_requests_as_sync():
    def answers() -> list[httpx.Response]:
        # Fresh responses per server: a response's stream is either sync or async.
        return [
            answer(200, {"recommendation_id": "home:1", "scenario": "home", "items": []}),
            answer(202, {"user_id": "a/b", "status": "accepted"}),
            answer(200, batch([{"index": 0, "item_id": "i", "status": "accepted"}])),
            answer(200, {"user_id": "u", "items": []}),
        ]

    sync_server, async_server = Server(*answers()), Server(*answers())

    with sync_server.client() as client:
        client.recommend("home", user_id="u", n=3, exclude=["x"], diversity=0.5)
        client.forget_user("a/b")
        client.publish_items([{"item_id": "i"}])
        client.rank("u", ["i"])
    async with async_server.async_client() as aclient:
        await aclient.recommend("home", user_id="u", n=3, exclude=["x"], diversity=0.5)
        await aclient.forget_user("a/b")
        await aclient.publish_items([{"item_id": "i"}])
        await aclient.rank("u", ["i"])

    def shape(server: Server) -> list[tuple[str, str, bytes]]:
        return [(r.method, str(r.url), r.content) for r in server.requests]

    assert shape(async_server) == shape(sync_server)
    assert (
        shape(async_server)[0][1]
        == f"{READER}/v1/recommendations?scenario=home&user_id=u&n=3&exclude=x&diversity=0.5"
    )


async def test_closing_the_async_client_closes_its_pool():
    server = Server(answer(200, {"scenarios": []}))
    client = server.async_client()
    assert await client.scenarios() == []
    await client.close()
    with pytest.raises(RuntimeError):
        await client.scenarios()
