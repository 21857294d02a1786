"""Reader HTTP service: serves recommendations from Redis (DESIGN.md, "Recommenders").

Build it with :func:`create_reader_app`; nothing is created at import time. Endpoints:

- ``GET /v1/trending?kind=&window=&category=&n=``: forward-decayed trending items, best
  first. 200 ``{"kind", "window", "category", "generated_at", "items": [{"item_id", "score",
  "source": {"model": "trending", "kind", "window", "category"}}]}``; 422 ``{"error",
  "detail"}`` for a bad parameter (the detail names the allowed values); 503 when Redis is
  down or slow.
- ``GET /healthz``: 200 ``{"status": "ok"}`` while the process runs (no Redis call).
- ``GET /readyz``: 200 ``{"status": "ready"}`` or 503 ``{"status": "unavailable", "reason"}``.
- ``GET /metrics``: Prometheus text; requests and latency per route, method and status.

Every Redis-touching request ends within ``2 * settings.redis_timeout_s``: the socket
timeouts bound each round trip and an overall deadline bounds redis-py's retries.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import Response
from prometheus_client import (
    CollectorRegistry,
)
from pydantic import BaseModel
from redis.exceptions import RedisError

from pipeline.events import InvalidEvent, check_id
from pipeline.http_common import (
    DEADLINE_FACTOR,
    BodyLimitMiddleware,
    ErrorBody,
    OrjsonResponse,
    RedisUnavailable,
    install_error_handlers,
    install_liveness,
    install_metrics,
    redis_call,
)
from pipeline.keys import Keys
from pipeline.personal_read import personal_router
from pipeline.ranking_read import ranking_router
from pipeline.segments_read import segments_router
from pipeline.settings import Settings
from pipeline.store import connect
from pipeline.trending_read import read_trending

MAX_N = 500


# --- reader ---------------------------------------------------------------------------------


class ItemSource(BaseModel):
    model: str
    kind: str
    window: str
    category: str | None


class TrendingItem(BaseModel):
    item_id: str
    score: float
    source: ItemSource


class TrendingResponse(BaseModel):
    kind: str
    window: str
    category: str | None
    generated_at: int
    items: list[TrendingItem]


def _choice(value: str, allowed: dict[str, Any], name: str) -> None:
    if value not in allowed:
        raise InvalidEvent(f"unknown {name} {value!r}; allowed: {', '.join(allowed)}")


def create_reader_app(settings: Settings) -> FastAPI:
    """The reader app. The Redis client lives from lifespan start to shutdown."""
    keys = Keys(settings.key_prefix)
    deadline_s = settings.redis_timeout_s * DEADLINE_FACTOR
    kinds = settings.trending_kinds
    windows = settings.trending_windows

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # connect() is lazy: the reader starts even while Redis is down (readyz says 503).
        app.state.redis = connect(settings, timeout_s=settings.redis_timeout_s)
        try:
            yield
        finally:
            await app.state.redis.aclose()

    app = FastAPI(
        title="Recommendation reader",
        version="0.1.0",
        description=(
            "Serves recommendations computed by the pipeline's agents from Redis. Every item "
            "says where it came from (`source`). Redis trouble answers 503 quickly."
        ),
        lifespan=lifespan,
        default_response_class=OrjsonResponse,
    )
    registry = CollectorRegistry()
    install_metrics(app, registry, "reader")

    install_error_handlers(app)
    install_liveness(app)
    # The largest legitimate body is a rank request of 500 ids with a context.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.reader_max_body_bytes)

    @app.get(
        "/v1/trending",
        response_model=TrendingResponse,
        responses={422: {"model": ErrorBody}, 503: {"model": ErrorBody}},
        summary="Trending items",
        description=(
            "Items with the highest forward-decayed count of events of one kind, within a "
            "half-life window, optionally within one category. Items marked unavailable in "
            "the catalog are left out; items unknown to the catalog are kept. `score` is the "
            "decayed weighted event count at `generated_at` (epoch milliseconds)."
        ),
    )
    async def trending(
        request: Request,
        kind: str = Query(
            next(iter(kinds)),
            description=f"Event kind, one of: {', '.join(kinds)}.",
            json_schema_extra={"enum": list(kinds)},
        ),
        window: str = Query(
            next(iter(windows)),
            description=f"Half-life window, one of: {', '.join(windows)}.",
            json_schema_extra={"enum": list(windows)},
        ),
        category: str = Query("", description="Category id; empty for all items."),
        n: int = Query(10, ge=1, le=MAX_N, description=f"Number of items, 1-{MAX_N}."),
    ) -> Response:
        _choice(kind, kinds, "kind")
        _choice(window, windows, "window")
        chosen = check_id(category, "category") if category else None
        now_ms = int(time.time() * 1000)
        async with redis_call(deadline_s):
            items = await read_trending(
                request.app.state.redis, keys, kind, window, windows[window], chosen, n, now_ms
            )
        body = {"kind": kind, "window": window, "category": chosen, "generated_at": now_ms}
        return OrjsonResponse({**body, "items": items})

    app.include_router(personal_router(settings))
    app.include_router(ranking_router(settings))
    app.include_router(segments_router(settings))

    @app.get(
        "/readyz",
        summary="Readiness",
        description="PINGs Redis: 200 `ready`, or 503 `unavailable` with a reason.",
    )
    async def readyz(request: Request) -> Response:
        try:
            async with redis_call(deadline_s):
                await request.app.state.redis.ping()
        except (RedisUnavailable, RedisError) as exc:  # RedisError: e.g. NOAUTH, LOADING
            return OrjsonResponse({"status": "unavailable", "reason": str(exc)}, status_code=503)
        return OrjsonResponse({"status": "ready"})

    return app
