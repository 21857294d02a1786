"""A request whose body stalls gets 408 and loses its connection within
``http_body_timeout_s`` (pipeline.api.http.BodyLimitMiddleware), on a real uvicorn server
bound to a free loopback port and spoken to through a raw socket."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import orjson
import pytest
import pytest_asyncio
import uvicorn

from pipeline.api.collector import create_collector_app
from pipeline.tools.local import free_port
from tests.unit.api.test_collector import ListProducer, collector_settings, event

TIMEOUT_S = 0.5


@pytest_asyncio.fixture
async def collector_port() -> AsyncIterator[int]:
    settings = collector_settings(http_body_timeout_s=TIMEOUT_S)
    app = create_collector_app(settings, producer=ListProducer())
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline and not task.done(), "uvicorn did not start"
            await asyncio.sleep(0.01)
        yield port
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


def request_head(length: int) -> bytes:
    return (
        "POST /v1/events HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


async def read_all(reader: asyncio.StreamReader, bound_s: float) -> bytes:
    """Everything the server sends until it closes the connection (bounded)."""
    return await asyncio.wait_for(reader.read(), bound_s)


@pytest.mark.asyncio
async def test_a_stalled_body_gets_408_and_the_connection_closed(collector_port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", collector_port)
    try:
        started = time.monotonic()
        # 100 bytes announced, 10 sent, then nothing.
        writer.write(request_head(100) + b'[{"event_i')
        await writer.drain()
        answer = await read_all(reader, TIMEOUT_S + 5)
        took = time.monotonic() - started
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), answer
    assert b"connection: close" in head.lower()
    assert orjson.loads(body)["error"] == "body_timeout"
    assert TIMEOUT_S * 0.9 <= took < TIMEOUT_S + 3


@pytest.mark.asyncio
async def test_a_body_that_arrives_slowly_but_in_time_is_served(collector_port: int) -> None:
    payload = orjson.dumps([event("e1")])
    reader, writer = await asyncio.open_connection("127.0.0.1", collector_port)
    try:
        writer.write(request_head(len(payload)) + payload[:10])
        await writer.drain()
        # The rest comes well within the timeout (a pause a real network may have).
        await asyncio.sleep(TIMEOUT_S / 5)
        writer.write(payload[10:])
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), TIMEOUT_S + 5)
    finally:
        writer.close()
    assert status.startswith(b"HTTP/1.1 200"), status
