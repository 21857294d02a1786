"""Reader HTTP service: serves recommendations from Redis.

Build it with :func:`create_reader_app`; nothing is created at import time. It mounts the
routes of every registered feature (``pipeline.features.registry``), plus:

- ``GET /healthz``: 200 ``{"status": "ok"}`` while the process runs (no Redis call);
- ``GET /readyz``: 200 ``{"status": "ready"}`` or 503 ``{"status": "unavailable", "reason"}``;
- ``GET /metrics``: Prometheus text; requests and latency per route, method and status;
- ``GET /docs``: Swagger UI, served with its files (``pipeline.api.docs``).

API keys and CORS: ``pipeline.api.security`` (every route under ``/v1`` is a read).

Every Redis-touching request ends within ``2 * settings.redis_timeout_s``: the socket
timeouts bound each round trip and an overall deadline bounds redis-py's retries.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import CollectorRegistry

from pipeline.api.deps import Context, ServiceContext
from pipeline.api.docs import install_docs
from pipeline.api.fast import FastLaneMiddleware
from pipeline.api.http import (
    BodyLimitMiddleware,
    OrjsonResponse,
    StoreUnavailable,
    install_error_handlers,
    install_liveness,
    install_metrics,
)
from pipeline.api.security import READER_ACCESS, install_api_keys, install_cors
from pipeline.core.keys import Keys
from pipeline.core.settings import Settings
from pipeline.features.registry import FEATURES
from pipeline.store.base import StoreError
from pipeline.store.redis import connect
from pipeline.web.routes import install_demo


def create_reader_app(settings: Settings) -> FastAPI:
    """The reader app. The store lives from lifespan start to shutdown."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # connect() is lazy: the reader starts even while Redis is down (readyz says 503).
        store = connect(settings, timeout_s=settings.redis_timeout_s)
        keys = Keys(settings.key_prefix)
        app.state.context = ServiceContext.of(settings, keys, store)
        try:
            yield
        finally:
            await store.close()

    app = FastAPI(
        title="Recommendation reader",
        version="0.1.0",
        description=(
            "Serves recommendations computed by the pipeline's agents from Redis. Every item "
            "says where it came from (`source`). Redis trouble answers 503 quickly."
        ),
        lifespan=lifespan,
        default_response_class=OrjsonResponse,
        # Served by install_docs from local files, not a CDN.
        docs_url=None,
        redoc_url=None,
    )
    fast = [route for f in FEATURES if f.fast is not None for route in f.fast(settings)]
    # Middleware added first runs innermost: the fast lane inside the metrics.
    app.add_middleware(FastLaneMiddleware, routes=fast)
    # Keys are checked just outside the fast lane, so it never answers an unchecked request.
    install_api_keys(app, settings, READER_ACCESS)
    install_metrics(app, CollectorRegistry(), "reader")
    install_error_handlers(app)
    install_liveness(app)
    install_docs(app)
    install_demo(app, settings)
    # The largest legitimate body is a rank request of 500 ids with a context.
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.reader_max_body_bytes,
        timeout_s=settings.http_body_timeout_s,
    )
    # Outermost: preflights answered, and every answer (401 included) readable by browsers.
    install_cors(app, settings)
    for feature in FEATURES:
        if feature.router is not None:
            app.include_router(feature.router(settings))

    @app.get(
        "/readyz",
        summary="Readiness",
        description="PINGs Redis: 200 `ready`, or 503 `unavailable` with a reason.",
    )
    async def readyz(ctx: Context) -> Response:
        try:
            async with ctx.bounded():
                await ctx.store.ping()
        except (StoreUnavailable, StoreError) as exc:
            return OrjsonResponse({"status": "unavailable", "reason": str(exc)}, status_code=503)
        return OrjsonResponse({"status": "ready"})

    return app
