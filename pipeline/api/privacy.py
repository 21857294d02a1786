"""``DELETE /v1/users/{user_id}``: a privacy request, removing what is kept about one user.

The collector turns the request into a ``forget`` event (``pipeline.core.events``) produced to
the topic topics.yaml routes ``forget`` to (``events.profile``), keyed by ``user_id`` like the
user's other events, so it reaches the workers that own the user's state, in order with the
user's events of that partition. Every agent group that keeps per-user state applies it in
its fenced batch: exactly once, in the transaction of the batch it lands in (docs/privacy.md).

The answer, 202 ``{"user_id", "status": "accepted", "event_id"}``, comes once Kafka has
acknowledged the event: the deletion is then certain to happen, not yet done. 503 when Kafka
did not acknowledge (resend: a second forget of the same user is harmless); 422 for an id
outside the id rule. Ids may contain ``/`` (the ``path`` convertor), escaped or not.
"""

from __future__ import annotations

import time
import uuid

from fastapi import FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel

from pipeline.api.http import ErrorBody, OrjsonResponse, error_response
from pipeline.api.producer import PublishFailed
from pipeline.core.events import FORGET, Event
from pipeline.core.ids import check_id
from pipeline.core.settings import Settings

PATH = "/v1/users/{user_id:path}"


class ForgetAccepted(BaseModel):
    user_id: str
    status: str
    event_id: str


def forget_event(user_id: str, now_ms: int) -> Event:
    """The ``forget`` event of one privacy request (a fresh event id per request)."""
    return Event(
        event_id=f"forget-{uuid.uuid4().hex}",
        event_type=FORGET,
        user_id=check_id(user_id, "user_id"),
        timestamp_ms=now_ms,
    )


def install_privacy(app: FastAPI, settings: Settings) -> None:
    """Add ``DELETE /v1/users/{user_id}`` to the collector ``app``. It produces through the
    app's publisher and topics (``app.state``, set by the collector's lifespan). API keys
    and CORS are the collector's middleware's (a write key when keys are configured)."""

    @app.delete(
        PATH,
        status_code=202,
        response_model=ForgetAccepted,
        responses={
            422: {"model": ErrorBody, "description": "The user id breaks the id rule."},
            503: {"model": ErrorBody, "description": "Kafka did not acknowledge; resend."},
        },
        summary="Forget a user",
        description=(
            "Privacy request: removes everything kept about the user (history, latent "
            "factors, for-you list, aliases, segment memberships, attributes from "
            "`POST /v1/users`). Asynchronous: the answer "
            "means Kafka acknowledged the `forget` event; the agent groups apply it when "
            "they reach it, usually within a second. Aggregates over all users (trending, "
            "related items, popularity, item factors) are kept."
        ),
    )
    async def forget_user(request: Request, user_id: str) -> Response:
        event = forget_event(user_id, int(time.time() * 1000))
        topic = request.app.state.topics.for_event_type(FORGET)
        try:
            await request.app.state.publisher.publish(
                [(topic, event.user_id.encode(), event.to_json())]
            )
        except PublishFailed as exc:
            return error_response(503, "kafka_unavailable", str(exc))
        body = {"user_id": event.user_id, "status": "accepted", "event_id": event.event_id}
        return OrjsonResponse(body, status_code=202)
