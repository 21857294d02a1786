"""``POST /v1/users``: users as data, the user records of ``pipeline.core.users`` over HTTP.

Body: one user object ``{"user_id", "attributes": {name: value or [values]}}`` or a JSON list
of at most ``settings.collector_max_events`` of them (any Content-Type is read as JSON). Each
element is validated on its own (:func:`~pipeline.core.users.user_from_dict`); valid ones are
stamped with ``updated_at`` (now, unless they carry one) and produced to the users topic
(topics.yaml ``catalog.users``), keyed by ``user_id``, where the ``users`` agent group keeps
each user's latest record in Redis (``{p}:user:{user_id}:attributes``). A later record of a
user replaces the earlier one whole; ``DELETE /v1/users/{user_id}`` erases it. Nothing on the
reader serves these attributes: they may be private.

Answers as ``POST /v1/items`` does: ``{"accepted", "rejected", "results": [{"index",
"user_id", "status": "accepted"} | {"index", "status": "rejected", "reason"}]}``, 200 when at
least one was accepted, 400 when none was or the body is not JSON or an empty list, 413 over
the limits, 503 when Kafka did not acknowledge (resend: a replayed record is harmless) or
topics.yaml declares no users topic.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel

from pipeline.api.http import ErrorBody, OrjsonResponse, error_response
from pipeline.api.producer import Message, PublishFailed
from pipeline.api.schemas import EXAMPLE_MS, request_body
from pipeline.core.events import decode_json
from pipeline.core.ids import MAX_ID_LENGTH, InvalidInput
from pipeline.core.items import MAX_ATTRIBUTE_VALUES, MAX_ATTRIBUTES
from pipeline.core.settings import Settings
from pipeline.core.users import USERS_TOPIC, user_from_dict

PATH = "/v1/users"

_VALUE = {"oneOf": [{"type": "string", "maxLength": 256}, {"type": "number"}, {"type": "boolean"}]}
USER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["user_id"],
    "properties": {
        "user_id": {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH},
        "attributes": {
            "type": "object",
            "maxProperties": MAX_ATTRIBUTES,
            "description": "Attribute name (an id) -> a value or a list of at most "
            f"{MAX_ATTRIBUTE_VALUES} values.",
            "additionalProperties": {
                "oneOf": [_VALUE, {"type": "array", "items": _VALUE, "maxItems": 64}]
            },
        },
        "updated_at": {
            "description": "When the record was made (epoch ms or ISO-8601); default: now.",
            "oneOf": [{"type": "integer"}, {"type": "string", "format": "date-time"}],
        },
    },
}
USER = {
    "user_id": "user-7",
    "attributes": {"country": "DE", "membership": "gold", "interests": ["running", "hiking"]},
}


class UserResult(BaseModel):
    index: int
    status: str
    user_id: str | None = None
    reason: str | None = None


class UsersResponse(BaseModel):
    accepted: int
    rejected: int
    results: list[UserResult]


def route_users(
    elements: list[Any], topic: str, now_ms: int
) -> tuple[list[dict[str, Any]], list[Message]]:
    """Validate each element: its result (accepted or the reason) and the messages to send."""
    results: list[dict[str, Any]] = []
    messages: list[Message] = []
    for index, element in enumerate(elements):
        try:
            user = user_from_dict(element)
        except InvalidInput as exc:
            results.append({"index": index, "status": "rejected", "reason": str(exc)})
            continue
        if user.updated_at_ms is None:
            user = replace(user, updated_at_ms=now_ms)
        messages.append((topic, user.user_id.encode(), orjson.dumps(user.to_dict())))
        results.append({"index": index, "user_id": user.user_id, "status": "accepted"})
    return results, messages


def install_users(app: FastAPI, settings: Settings, registry: CollectorRegistry) -> None:
    """Add ``POST /v1/users`` to the collector ``app``; it produces through the app's
    publisher and topics (``app.state``, set by the collector's lifespan)."""
    max_users = settings.collector_max_events
    topic_name = settings.topic_prefix + USERS_TOPIC
    users_total = Counter(
        "collector_users_total",
        "User records received, by outcome (accepted, rejected, failed: Kafka did not "
        "acknowledge).",
        ["outcome"],
        registry=registry,
    )

    @app.post(
        PATH,
        response_model=UsersResponse,
        responses={
            400: {"description": "Not JSON, empty list, or every record rejected."},
            413: {"model": ErrorBody, "description": "Body or record count over the limit."},
            503: {
                "model": ErrorBody,
                "description": "Kafka did not acknowledge (resend), or no users topic.",
            },
        },
        summary="Publish user records",
        description=(
            f"Body: one user record or a JSON list of at most {max_users} "
            "(`PIPELINE_COLLECTOR_MAX_EVENTS`): `user_id` and `attributes` (name -> value or "
            "list of values). Each is validated on its own and reported by index; valid ones "
            "go to the users topic keyed by `user_id`. A later record of a user replaces the "
            "earlier one whole; `DELETE /v1/users/{user_id}` erases it. The reader never "
            "serves user attributes."
        ),
        openapi_extra=request_body(
            USER_SCHEMA,
            max_users,
            {
                "user": {"summary": "One user", "value": USER},
                "batch": {
                    "summary": "Two users",
                    "value": [
                        USER,
                        {
                            "user_id": "u-8",
                            "attributes": {"country": "FR"},
                            "updated_at": EXAMPLE_MS,
                        },
                    ],
                },
            },
        ),
    )
    async def post_users(request: Request) -> Response:
        try:
            decoded = decode_json(await request.body())
        except InvalidInput as exc:
            return error_response(400, "invalid_json", str(exc))
        elements = decoded if isinstance(decoded, list) else [decoded]
        if not elements:
            return error_response(400, "empty_batch", "the list holds no user records")
        if len(elements) > max_users:
            detail = f"{len(elements)} user records; at most {max_users} per request"
            return error_response(413, "too_many_users", detail)
        try:
            topic = request.app.state.topics.by_name(topic_name).name
        except KeyError:
            return error_response(
                503, "no_users_topic", f"topics.yaml declares no {USERS_TOPIC} topic"
            )
        results, messages = route_users(elements, topic, int(time.time() * 1000))
        accepted = len(messages)
        users_total.labels("rejected").inc(len(results) - accepted)
        if messages:
            try:
                await request.app.state.publisher.publish(messages)
            except PublishFailed as exc:
                users_total.labels("failed").inc(accepted)
                return error_response(503, "kafka_unavailable", str(exc))
            users_total.labels("accepted").inc(accepted)
        payload = {"accepted": accepted, "rejected": len(results) - accepted, "results": results}
        return OrjsonResponse(payload, status_code=200 if accepted else 400)
