"""Collector HTTP service: websites POST events, the collector validates and produces them.

Build it with :func:`create_collector_app`; nothing is created at import time. Endpoints:

- ``POST /v1/events``: one event object or a JSON list of at most
  ``settings.collector_max_events`` events (DESIGN.md, event contract). Each element is
  validated on its own; valid ones are produced to the topic of their type (topics.yaml,
  key = ``user_id``). The answer comes after Kafka acknowledged every accepted event:
  ``{"accepted": N, "rejected": M, "results": [{"index", "event_id", "status": "accepted"} |
  {"index", "status": "rejected", "reason"}]}`` with 200 when at least one was accepted, 400
  (same shape) when none was. 413 ``{"error", "detail"}`` for a body over
  ``collector_max_body_bytes`` or a list over ``collector_max_events``; 400 for a body that is
  not JSON or an empty list; 503 when Kafka did not acknowledge in time (nothing is reported
  accepted: resend the whole request; the event contract makes replays of an ``event_id``
  harmless).
- ``GET /healthz``: 200 ``{"status": "ok"}``. ``GET /readyz``: 200 ``{"status": "ready"}``
  when the producer is started and broker metadata refreshes, else 503 ``{"status":
  "unavailable", "reason"}``. ``GET /metrics``: Prometheus text.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel

from pipeline.events import InvalidEvent, decode_json, event_from_dict
from pipeline.http_common import (
    ErrorBody,
    OrjsonResponse,
    error_response,
    install_error_handlers,
    install_liveness,
    install_metrics,
)
from pipeline.settings import Settings
from pipeline.topics import Topics, load_topics

log = logging.getLogger(__name__)

# Longest a request waits for Kafka's acknowledgements. aiokafka's own request timeout is
# 40 s; a website's tracking call should fail (and retry) much sooner.
PRODUCE_TIMEOUT_S = 10.0
READY_TIMEOUT_S = 2.0
# Startup waits this long for the first broker connection, then serves 503 while a
# background task keeps trying (the collector may start before Kafka).
STARTUP_WAIT_S = 5.0
RETRY_MAX_S = 10.0


class BodyTooLarge(Exception):
    """The request body exceeds ``collector_max_body_bytes``."""


class EventResult(BaseModel):
    index: int
    status: str
    event_id: str | None = None
    reason: str | None = None


class EventsResponse(BaseModel):
    accepted: int
    rejected: int
    results: list[EventResult]


async def read_limited(request: Request, limit: int) -> bytes:
    """The request body, refusing more than ``limit`` bytes before buffering them all.

    The Content-Length header is checked first; the bytes are counted as well because a
    chunked body has no header and a header can lie.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"body of {declared} bytes exceeds the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def produce_all(producer: Any, messages: list[tuple[str, bytes, bytes]]) -> None:
    """Send ``(topic, key, value)`` messages and wait for every acknowledgement.

    With ``send`` (aiokafka) all messages are queued first and awaited together, so they
    travel in batches; a producer with only ``send_and_wait`` is awaited concurrently.
    """
    if hasattr(producer, "send"):
        futures: list[asyncio.Future[Any]] = []
        try:
            for topic, key, value in messages:
                futures.append(await producer.send(topic, value=value, key=key))
        except BaseException:
            # The request fails; retrieve the queued sends' outcomes so none goes unobserved.
            for future in futures:
                future.add_done_callback(lambda done: done.cancelled() or done.exception())
            raise
        await asyncio.gather(*futures)
    else:
        await asyncio.gather(
            *(producer.send_and_wait(topic, value=value, key=key) for topic, key, value in messages)
        )


def create_collector_app(settings: Settings, producer: Any = None) -> FastAPI:
    """The collector app. An injected ``producer`` is used as is: never started nor stopped."""
    max_future_ms = int(settings.max_future_skew_s * 1000)

    async def keep_starting(app: FastAPI) -> None:
        delay = 0.5
        while True:
            candidate = AIOKafkaProducer(
                bootstrap_servers=settings.kafka_bootstrap,
                linger_ms=5,
                acks="all",
                enable_idempotence=False,
            )
            try:
                await candidate.start()
            except asyncio.CancelledError:
                # Shutdown during a connection attempt: close the half-started client.
                with contextlib.suppress(Exception):
                    await candidate.stop()
                raise
            except (KafkaError, OSError) as exc:
                app.state.producer_error = f"Kafka at {settings.kafka_bootstrap}: {exc}"
                log.warning("collector: %s; retrying in %.1f s", app.state.producer_error, delay)
                with contextlib.suppress(Exception):
                    await candidate.stop()
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            app.state.producer = candidate
            app.state.producer_error = None
            return

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.topics = load_topics(settings.topics_file, settings.topic_prefix)
        app.state.producer = producer
        app.state.producer_error = "producer not started yet"
        starter = None
        if producer is None:
            starter = asyncio.create_task(keep_starting(app))
            await asyncio.wait({starter}, timeout=STARTUP_WAIT_S)
        try:
            yield
        finally:
            if starter is not None:
                starter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await starter
                if app.state.producer is not None:
                    await app.state.producer.stop()

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
    )
    registry = CollectorRegistry()
    install_metrics(app, registry, "collector")
    install_error_handlers(app)
    install_liveness(app)
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
            "its own and reported by index. Answers once Kafka acknowledged the accepted ones."
        ),
    )
    async def post_events(request: Request) -> Response:
        try:
            body = await read_limited(request, settings.collector_max_body_bytes)
        except BodyTooLarge as exc:
            return error_response(413, "body_too_large", str(exc))
        try:
            decoded = decode_json(body)
        except InvalidEvent as exc:
            return error_response(400, "invalid_json", str(exc))
        elements = decoded if isinstance(decoded, list) else [decoded]
        if not elements:
            return error_response(400, "empty_batch", "the list holds no events")
        if len(elements) > settings.collector_max_events:
            detail = f"{len(elements)} events; at most {settings.collector_max_events} per request"
            return error_response(413, "too_many_events", detail)

        topics: Topics = request.app.state.topics
        now_ms = int(time.time() * 1000)
        results: list[dict[str, Any]] = []
        messages: list[tuple[str, bytes, bytes]] = []
        for index, element in enumerate(elements):
            try:
                event = event_from_dict(element, now_ms, max_future_ms)
            except InvalidEvent as exc:
                results.append({"index": index, "status": "rejected", "reason": str(exc)})
                continue
            topic = topics.for_event_type(event.event_type)
            messages.append((topic, event.user_id.encode(), event.to_json()))
            results.append({"index": index, "event_id": event.event_id, "status": "accepted"})
        accepted = len(messages)
        rejected = len(results) - accepted
        events_total.labels("rejected").inc(rejected)

        if messages:
            active = request.app.state.producer
            if active is None:
                events_total.labels("failed").inc(accepted)
                return error_response(503, "kafka_unavailable", request.app.state.producer_error)
            try:
                async with asyncio.timeout(PRODUCE_TIMEOUT_S):
                    await produce_all(active, messages)
            except (KafkaError, OSError) as exc:  # OSError covers the deadline's TimeoutError
                events_total.labels("failed").inc(accepted)
                reason = str(exc) or type(exc).__name__
                detail = f"Kafka did not acknowledge the events ({reason}); resend them"
                return error_response(503, "kafka_unavailable", detail)
            events_total.labels("accepted").inc(accepted)

        payload = {"accepted": accepted, "rejected": rejected, "results": results}
        return OrjsonResponse(payload, status_code=200 if accepted else 400)

    @app.get(
        "/readyz",
        summary="Readiness",
        description="200 when the producer is started and the broker answers a metadata request.",
    )
    async def readyz(request: Request) -> Response:
        active = request.app.state.producer
        reason = request.app.state.producer_error
        if active is not None:
            client = getattr(active, "client", None)
            if client is None:  # an injected producer without a Kafka client
                return OrjsonResponse({"status": "ready"})
            try:
                updated = await asyncio.wait_for(client.force_metadata_update(), READY_TIMEOUT_S)
                reason = "the broker did not answer a metadata request"
            except (KafkaError, OSError) as exc:  # OSError covers wait_for's TimeoutError
                updated = False
                reason = f"no broker metadata within {READY_TIMEOUT_S:g} s: {exc!r}"
            if updated:
                return OrjsonResponse({"status": "ready"})
        return OrjsonResponse({"status": "unavailable", "reason": reason}, status_code=503)

    return app
