"""The baselines that pay only the framework: a Faust agent that counts messages, and an
HTTP endpoint that returns one stored list.

Run as programs by the benchmarks, in processes of their own, exactly as a worker or a reader
runs: ``python -m pipeline.tools.bench.bare faust TOPICS EXPECTED OUT`` (settings from the
environment) counts ``EXPECTED`` messages of the comma-separated ``TOPICS``, writes ``{"first",
"last", "messages"}`` (perf_counter seconds) to ``OUT`` and exits;
``python -m pipeline.tools.bench.bare http PORT KEY`` serves ``GET /`` with the bytes of Redis
key ``KEY`` (redis-py, Starlette, uvicorn: what the reader is built on, without the rest).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import orjson


def count_with_faust(topics: list[str], expected: int, out: Path) -> None:
    from faust import Worker

    from pipeline.core.settings import load_settings
    from pipeline.stream.app import faust_app

    settings = load_settings()
    app = faust_app(settings, f"{settings.app_id}.bare", tuned=False)
    source = app.topic(*topics, key_serializer="raw", value_serializer="raw")
    state = {"messages": 0, "first": 0.0}

    @app.agent(source, name="bare", concurrency=1)
    async def count(stream):  # type: ignore[no-untyped-def]
        async for _ in stream:
            state["messages"] += 1
            if state["messages"] == 1:
                state["first"] = time.perf_counter()
            if state["messages"] >= expected:
                result = {
                    "first": state["first"],
                    "last": time.perf_counter(),
                    "messages": expected,
                }
                out.write_bytes(orjson.dumps(result))
                os._exit(0)

    Worker(app, loglevel="warning").execute_from_commandline()


def serve_one_key(port: int, key: str) -> None:
    import redis.asyncio as aioredis
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    from pipeline.core.settings import load_settings

    settings = load_settings()
    client = aioredis.Redis.from_url(settings.redis_url)

    async def get(request: object) -> Response:
        return Response(await client.get(key) or b"[]", media_type="application/json")

    app = Starlette(routes=[Route("/", get)])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    role = sys.argv[1]
    if role == "faust":
        count_with_faust(sys.argv[2].split(","), int(sys.argv[3]), Path(sys.argv[4]))
    elif role == "http":
        serve_one_key(int(sys.argv[2]), sys.argv[3])
    else:
        raise SystemExit(f"unknown role {role!r}")
