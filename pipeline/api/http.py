"""HTTP pieces shared by the reader and the collector: JSON responses, the error shape and
its handlers, liveness, metrics, the body-size limit, and bounded store calls.

Routes raise (:class:`~pipeline.core.ids.InvalidInput`, :class:`StoreUnavailable`); the
handlers installed here turn exceptions into ``{"error", "detail"}`` answers in one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pipeline.core.ids import InvalidInput

# redis-py retries a failed command up to 10 times with backoff; each attempt is bounded by
# the socket timeout, so only an overall deadline keeps "Redis down" answers fast.
DEADLINE_FACTOR = 2.0


class OrjsonResponse(JSONResponse):
    """JSON via orjson (FastAPI's own ORJSONResponse is deprecated)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class ErrorBody(BaseModel):
    """Body of every 4xx/5xx answer except readiness: a stable code and a readable message."""

    error: str
    detail: str


# The error answers every reading route documents.
ERRORS: dict[int | str, dict[str, Any]] = {422: {"model": ErrorBody}, 503: {"model": ErrorBody}}


def error_response(status: int, error: str, detail: str) -> OrjsonResponse:
    return OrjsonResponse({"error": error, "detail": detail}, status_code=status)


def validation_message(exc: RequestValidationError) -> str:
    """FastAPI's error list as one sentence: ``query n: Input should be ...``."""
    parts = []
    for error in exc.errors():
        where = " ".join(str(part) for part in error.get("loc", ()))
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def install_liveness(app: FastAPI) -> None:
    """``GET /healthz``: 200 while the process runs, calling no dependency (so an outage of
    Redis or Kafka never restarts the process; readiness is each service's ``/readyz``)."""

    @app.get("/healthz", summary="Liveness", description="200 while the process runs.")
    async def healthz() -> Response:
        return OrjsonResponse({"status": "ok"})


def install_error_handlers(app: FastAPI) -> None:
    """Map the exceptions routes raise to ``{"error", "detail"}`` answers: bad input 422,
    Redis trouble 503. Routes raise; they do not build error responses themselves."""

    @app.exception_handler(StoreUnavailable)
    async def _on_store_unavailable(request: Request, exc: StoreUnavailable) -> Response:
        return error_response(503, "redis_unavailable", str(exc))

    @app.exception_handler(InvalidInput)
    async def _on_invalid(request: Request, exc: InvalidInput) -> Response:
        return error_response(422, "invalid_parameter", str(exc))

    @app.exception_handler(RequestValidationError)
    async def _on_validation(request: Request, exc: RequestValidationError) -> Response:
        return error_response(422, "invalid_parameter", validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _on_http(request: Request, exc: StarletteHTTPException) -> Response:
        # 404 for an unknown path, 405 for a wrong method: the same body shape as the rest.
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail))


class HttpMiddleware:
    """An ASGI middleware that acts on HTTP requests and passes anything else through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


class BodyLimitMiddleware(HttpMiddleware):
    """Answers 413 before the app sees a body over ``max_bytes`` (Content-Length or read),
    and 408 (closing the connection) when the whole body has not arrived within
    ``timeout_s`` of the app starting to read it: a client that announces a body and
    stalls cannot hold a connection and its buffers open."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float | None = None) -> None:
        super().__init__(app)
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is None and b"transfer-encoding" not in headers:
            # No body at all (a GET): nothing to count.
            await self.app(scope, receive, send)
            return
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(send)
            return
        # Read the body up front (bounded in size and time), then replay it to the app.
        messages: list[Message] = []
        try:
            async with asyncio.timeout(self.timeout_s):
                too_large = await self._read_body(receive, messages)
        except TimeoutError:
            await self._timed_out(send)
            return
        if too_large:
            await self._too_large(send)
            return
        replay = iter(messages)

        async def replayed() -> Message:
            return next(replay, None) or await receive()

        await self.app(scope, replayed, send)

    async def _read_body(self, receive: Receive, messages: list[Message]) -> bool:
        """Receive the body's messages into ``messages``; True once it is over the limit."""
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                return False
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                return True
            if not message.get("more_body", False):
                return False

    async def _too_large(self, send: Send) -> None:
        detail = f"request bodies are limited to {self.max_bytes} bytes"
        await _send_error(send, 413, "body_too_large", detail)

    async def _timed_out(self, send: Send) -> None:
        detail = f"the request body did not arrive within {self.timeout_s:g} s"
        # The rest of the body may still come: the connection cannot carry another request.
        await _send_error(send, 408, "body_timeout", detail, close=True)


async def _send_error(
    send: Send, status: int, error: str, detail: str, close: bool = False
) -> None:
    """An ``{"error", "detail"}`` answer sent from a middleware (outside FastAPI)."""
    body = orjson.dumps({"error": error, "detail": detail})
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _MetricsMiddleware(HttpMiddleware):
    """Counts requests and observes latency, labelled by route template (bounded labels)."""

    def __init__(self, app: ASGIApp, requests: Counter, latency: Histogram) -> None:
        super().__init__(app)
        self.requests = requests
        self.latency = latency

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status = 500  # unless a response starts: an unhandled exception

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            # The router stores the matched route in the scope; raw paths would let any
            # client create label values without bound. The template without convertors
            # ({item_id}, not {item_id:path}) is the same for the fast lane and FastAPI.
            matched = scope.get("route")
            route = getattr(matched, "path_format", None) or getattr(matched, "path", "unmatched")
            self.requests.labels(route, scope["method"], str(status)).inc()
            self.latency.labels(route).observe(time.perf_counter() - started)


def install_metrics(app: FastAPI, registry: CollectorRegistry, service: str) -> None:
    """``GET /metrics`` serving ``{service}_requests_total``, ``{service}_request_duration_seconds``
    and process metrics.

    A registry per app keeps apps built in one process (tests) from clashing.
    """
    requests = Counter(
        f"{service}_requests_total",
        "HTTP requests by route, method and status.",
        ["route", "method", "status"],
        registry=registry,
    )
    latency = Histogram(
        f"{service}_request_duration_seconds",
        "HTTP request latency by route.",
        ["route"],
        registry=registry,
        buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
    )
    ProcessCollector(registry=registry)
    GCCollector(registry=registry)
    app.add_middleware(_MetricsMiddleware, requests=requests, latency=latency)

    @app.get("/metrics", summary="Prometheus metrics", description="Prometheus text format.")
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


class StoreUnavailable(Exception):
    """The store (Redis) did not answer in time; mapped to 503."""


@contextlib.asynccontextmanager
async def store_call(
    deadline_s: float, errors: tuple[type[BaseException], ...]
) -> AsyncIterator[None]:
    """Bound a group of store calls by ``deadline_s``; ``errors`` (the store's transient
    errors) and the deadline become :class:`StoreUnavailable`."""
    caught: tuple[type[BaseException], ...] = (*errors, TimeoutError)
    try:
        async with asyncio.timeout(deadline_s):
            yield
    except caught as exc:
        reason = str(exc) or type(exc).__name__
        raise StoreUnavailable(f"Redis unavailable (deadline {deadline_s:g} s): {reason}") from exc
