"""Collector HTTP service: websites POST events, the collector validates and produces them.

Build it with :func:`create_collector_app`; nothing is created at import time. Endpoints:

- ``POST /v1/events``: one event object or a JSON list of at most
  ``settings.collector_max_events`` events (the event contract, ``pipeline.core.events``).
  Each element is validated on its own; valid ones are produced to the topic of their type
  (topics.yaml, key = ``user_id``). The answer comes after Kafka acknowledged every
  accepted event: ``{"accepted": N, "rejected": M, "results": [{"index", "event_id",
  "status": "accepted"} | {"index", "status": "rejected", "reason"}]}`` with 200 when at
  least one was accepted, 400 (same shape) when none was. 413 ``{"error", "detail"}`` for a
  body over ``collector_max_body_bytes`` or a list over ``collector_max_events``; 400 for a
  body that is not JSON or an empty list; 408 (and the connection closed) for a body that
  has not fully arrived within ``http_body_timeout_s``; 503 when Kafka did not acknowledge
  in time (nothing is reported accepted: resend the whole request; the event contract
  makes replays of an ``event_id`` harmless).
- ``GET /healthz``: 200 ``{"status": "ok"}``. ``GET /readyz``: 200 ``{"status": "ready"}``
  when the producer is started and broker metadata refreshes, else 503 ``{"status":
  "unavailable", "reason"}``. ``GET /metrics``: Prometheus text.
- ``POST /v1/items``: catalog items, answered like events (``pipeline.api.items``).
- ``POST /v1/users``: user records (attributes), answered like items (``pipeline.api.users``).
- ``GET /docs``: Swagger UI, served with its files (``pipeline.api.docs``).

API keys and CORS: ``pipeline.api.security`` (every route under ``/v1`` is a write, except
the public ``GET /v1/sdk.js``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel

from pipeline.api.docs import install_docs
from pipeline.api.http import (
    BodyLimitMiddleware,
    ErrorBody,
    OrjsonResponse,
    error_response,
    install_error_handlers,
    install_liveness,
    install_metrics,
)
from pipeline.api.items import install_items
from pipeline.api.privacy import install_privacy
from pipeline.api.producer import Message, Publisher, PublishFailed
from pipeline.api.schemas import events_body
from pipeline.api.security import COLLECTOR_ACCESS, install_api_keys, install_cors
from pipeline.api.users import install_users
from pipeline.core.events import decode_json, event_from_dict
from pipeline.core.ids import InvalidInput
from pipeline.core.settings import Settings
from pipeline.core.topics import Topics
from pipeline.features.registry import declared_topics
from pipeline.web.routes import install_sdk


class EventResult(BaseModel):
    index: int
    status: str
    event_id: str | None = None
    reason: str | None = None


class EventsResponse(BaseModel):
    accepted: int
    rejected: int
    results: list[EventResult]


def route_events(
    elements: list[Any], topics: Topics, now_ms: int, max_future_ms: int
) -> tuple[list[dict[str, Any]], list[Message]]:
    """Validate each element: its result (accepted or the reason) and the messages to send."""
    results: list[dict[str, Any]] = []
    messages: list[Message] = []
    for index, element in enumerate(elements):
        try:
            event = event_from_dict(element, now_ms, max_future_ms)
        except InvalidInput as exc:
            results.append({"index": index, "status": "rejected", "reason": str(exc)})
            continue
        topic = topics.for_event_type(event.event_type)
        messages.append((topic, event.user_id.encode(), event.to_json()))
        results.append({"index": index, "event_id": event.event_id, "status": "accepted"})
    return results, messages


def create_collector_app(settings: Settings, producer: Any = None) -> FastAPI:
    """The collector app. An injected ``producer`` is used as is: never started nor stopped."""
    max_future_ms = int(settings.max_future_skew_s * 1000)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.topics = declared_topics(settings)
        app.state.publisher = publisher = Publisher(settings, producer)
        await publisher.start()
        try:
            yield
        finally:
            await publisher.stop()

    app = FastAPI(
        title="Event collector",
        version="0.1.0",
        description=(
            "Accepts tracked events over HTTP, validates each against the event contract and "
            "produces the valid ones to Kafka, keyed by user_id. `accepted` means acknowledged "
            "by Kafka."
        ),
        lifespan=lifespan,
        default_response_class=OrjsonResponse,
        # Served by install_docs from local files, not a CDN.
        docs_url=None,
        redoc_url=None,
    )
    registry = CollectorRegistry()
    # Added first, so it runs inside the metrics: refused requests are counted too.
    install_api_keys(app, settings, COLLECTOR_ACCESS)
    install_metrics(app, registry, "collector")
    install_error_handlers(app)
    install_liveness(app)
    install_docs(app)
    install_items(app, settings, registry)
    install_users(app, settings, registry)
    install_privacy(app, settings)
    install_sdk(app)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.collector_max_body_bytes,
        timeout_s=settings.http_body_timeout_s,
    )
    # Outermost: preflights answered, and every answer (401 included) readable by browsers.
    install_cors(app, settings)
    events_total = Counter(
        "collector_events_total",
        "Events received, by outcome (accepted, rejected, failed: Kafka did not acknowledge).",
        ["outcome"],
        registry=registry,
    )

    @app.post(
        "/v1/events",
        response_model=EventsResponse,
        responses={
            400: {"description": "Not JSON, empty list, or every event rejected."},
            413: {"model": ErrorBody, "description": "Body or event count over the limit."},
            503: {"model": ErrorBody, "description": "Kafka did not acknowledge; resend."},
        },
        summary="Publish events",
        description=(
            "Body: one event object or a JSON list of events. Each element is validated on "
            "its own and reported by index. Answers once Kafka acknowledged the accepted ones. "
            f"At most {settings.collector_max_events} events per request "
            "(`PIPELINE_COLLECTOR_MAX_EVENTS`)."
        ),
        openapi_extra=events_body(settings.collector_max_events),
    )
    async def post_events(request: Request) -> Response:
        try:
            decoded = decode_json(await request.body())
        except InvalidInput as exc:
            return error_response(400, "invalid_json", str(exc))
        elements = decoded if isinstance(decoded, list) else [decoded]
        if not elements:
            return error_response(400, "empty_batch", "the list holds no events")
        if len(elements) > settings.collector_max_events:
            detail = f"{len(elements)} events; at most {settings.collector_max_events} per request"
            return error_response(413, "too_many_events", detail)
        now_ms = int(time.time() * 1000)
        results, messages = route_events(elements, request.app.state.topics, now_ms, max_future_ms)
        accepted = len(messages)
        events_total.labels("rejected").inc(len(results) - accepted)
        if messages:
            try:
                await request.app.state.publisher.publish(messages)
            except PublishFailed as exc:
                events_total.labels("failed").inc(accepted)
                return error_response(503, "kafka_unavailable", str(exc))
            events_total.labels("accepted").inc(accepted)
        payload = {"accepted": accepted, "rejected": len(results) - accepted, "results": results}
        return OrjsonResponse(payload, status_code=200 if accepted else 400)

    @app.get(
        "/readyz",
        summary="Readiness",
        description="200 when the producer is started and the broker answers a metadata request.",
    )
    async def readyz(request: Request) -> Response:
        reason = await request.app.state.publisher.readiness()
        if reason is None:
            return OrjsonResponse({"status": "ready"})
        return OrjsonResponse({"status": "unavailable", "reason": reason}, status_code=503)

    return app
