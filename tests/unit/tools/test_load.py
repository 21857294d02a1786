"""The Python load generator of the benchmarks (``pipeline.tools.bench.load``)."""

from __future__ import annotations

import asyncio

import pytest

from pipeline.tools.bench.load import _python_load


@pytest.mark.asyncio
async def test_paths_are_requested_in_turn_on_every_connection() -> None:
    asked: list[str] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                asked.append(head.split(b" ")[1].decode())
                status = b"200 OK" if not asked[-1].startswith("/missing") else b"404 Not Found"
                writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        paths = ["/a/related?n=10", "/b", "/missing"]
        result = await _python_load(f"http://127.0.0.1:{port}/unused", 0.3, 2, paths)
    assert set(asked) == set(paths)
    # Each connection takes the paths in turn from the first: a third of them are misses.
    assert result["errors"] == asked.count("/missing") > 0
    assert result["requests_per_s"] > 0
    assert asked.count("/a/related?n=10") >= asked.count("/missing")
