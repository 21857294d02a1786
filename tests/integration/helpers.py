"""Shared pieces of the integration tests: processes, producing, bounded waits."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import orjson

from pipeline.core.settings import Settings, to_env
from pipeline.stream.kafka import kafka_producer
from pipeline.tools.local import ManagedProcess, spawn

T = TypeVar("T")


def pipeline_process(settings: Settings, args: list[str], log_path: Path) -> ManagedProcess:
    """Run ``python -m pipeline ARGS`` with ``settings`` passed through the environment."""
    env = dict(os.environ)
    env.update(to_env(settings))
    return spawn(args[0], [sys.executable, "-m", "pipeline", *args], log_path, env)


async def produce(
    settings: Settings, topic: str, records: Iterable[tuple[bytes | None, Any]]
) -> int:
    """Send (key, value) pairs; dict values are JSON-encoded, bytes sent as they are."""
    sent = 0
    async with kafka_producer(settings) as producer:
        pending = []
        for key, value in records:
            payload = value if isinstance(value, bytes) else orjson.dumps(value)
            pending.append(await producer.send(topic, value=payload, key=key))
            sent += 1
        await asyncio.gather(*pending)
    return sent


async def wait_for(
    probe: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    timeout_s: float,
    what: str,
    interval_s: float = 0.1,
) -> T:
    """Poll ``probe`` until ``done(result)``; fail with the last result after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    result = await probe()
    while not done(result):
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout_s:.0f} s waiting for {what}; last: {result!r}"[:2000]
            )
        await asyncio.sleep(interval_s)
        result = await probe()
    return result


@asynccontextmanager
async def reader_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on an in-process reader app (lifespan run, real Redis behind it)."""
    from pipeline.api.reader import create_reader_app

    app = create_reader_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://reader"
        ) as client,
    ):
        yield client


async def get_json(client: httpx.AsyncClient, path: str, **params: Any) -> Any:
    """GET that must answer 200; returns the decoded body."""
    response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
