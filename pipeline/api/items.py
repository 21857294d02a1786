"""``POST /v1/items``: catalog items over HTTP, the same records ``pipeline catalog`` publishes
from a file.

Body: one item object or a JSON list of at most ``settings.collector_max_events`` items (the
item contract, ``pipeline.core.items``; any Content-Type is read as JSON). Each element is
validated on its own by :func:`~pipeline.core.items.item_from_dict`; valid ones are produced
to the catalog topic (topics.yaml ``catalog.items``), keyed by ``item_id``, with the JSON the
file path produces (``pipeline.tools.publish``), where the catalog agent group writes them to
Redis. The answer comes after Kafka acknowledged every accepted item: ``{"accepted": N,
"rejected": M, "results": [{"index", "item_id", "status": "accepted"} | {"index", "status":
"rejected", "reason"}]}``, 200 when at least one was accepted, 400 (same shape) when none
was; 400 ``{"error", "detail"}`` for a body that is not JSON or an empty list; 413 for a list
over the limit (or a body over ``collector_max_body_bytes``); 503 when Kafka did not
acknowledge (nothing is accepted: resend; a later version of an item replaces it whole, so a
replay is harmless).
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel

from pipeline.api.http import ErrorBody, OrjsonResponse, error_response
from pipeline.api.producer import Message, PublishFailed
from pipeline.api.schemas import items_body
from pipeline.core.events import decode_json
from pipeline.core.ids import InvalidInput
from pipeline.core.items import Item, item_from_dict
from pipeline.core.settings import Settings
from pipeline.core.topics import Topics

PATH = "/v1/items"


class ItemResult(BaseModel):
    index: int
    status: str
    item_id: str | None = None
    reason: str | None = None


class ItemsResponse(BaseModel):
    accepted: int
    rejected: int
    results: list[ItemResult]


def catalog_message(item: Item, topics: Topics) -> Message:
    """The catalog topic's message of one item: keyed by ``item_id``, the item's JSON (what
    ``pipeline.tools.publish.route`` sends for a catalog file line)."""
    return topics.catalog.name, item.item_id.encode(), orjson.dumps(item.to_dict())


def route_items(elements: list[Any], topics: Topics) -> tuple[list[dict[str, Any]], list[Message]]:
    """Validate each element: its result (accepted or the reason) and the messages to send."""
    results: list[dict[str, Any]] = []
    messages: list[Message] = []
    for index, element in enumerate(elements):
        try:
            item = item_from_dict(element)
        except InvalidInput as exc:
            results.append({"index": index, "status": "rejected", "reason": str(exc)})
            continue
        messages.append(catalog_message(item, topics))
        results.append({"index": index, "item_id": item.item_id, "status": "accepted"})
    return results, messages


def install_items(app: FastAPI, settings: Settings, registry: CollectorRegistry) -> None:
    """Add ``POST /v1/items`` to the collector ``app``; it produces through the app's
    publisher and topics (``app.state``, set by the collector's lifespan)."""
    max_items = settings.collector_max_events
    items_total = Counter(
        "collector_items_total",
        "Catalog items received, by outcome (accepted, rejected, failed: Kafka did not "
        "acknowledge).",
        ["outcome"],
        registry=registry,
    )

    @app.post(
        PATH,
        response_model=ItemsResponse,
        responses={
            400: {"description": "Not JSON, empty list, or every item rejected."},
            413: {"model": ErrorBody, "description": "Body or item count over the limit."},
            503: {"model": ErrorBody, "description": "Kafka did not acknowledge; resend."},
        },
        summary="Publish catalog items",
        description=(
            f"Body: one item object or a JSON list of at most {max_items} items "
            "(`PIPELINE_COLLECTOR_MAX_EVENTS`). Each element is validated on its own and "
            "reported by index; valid items go to the catalog topic keyed by `item_id`, as "
            "`pipeline catalog` sends a file's lines. A later version of an item replaces "
            "the earlier one whole. Answers once Kafka acknowledged the accepted ones."
        ),
        openapi_extra=items_body(max_items),
    )
    async def post_items(request: Request) -> Response:
        try:
            decoded = decode_json(await request.body())
        except InvalidInput as exc:
            return error_response(400, "invalid_json", str(exc))
        elements = decoded if isinstance(decoded, list) else [decoded]
        if not elements:
            return error_response(400, "empty_batch", "the list holds no items")
        if len(elements) > max_items:
            detail = f"{len(elements)} items; at most {max_items} per request"
            return error_response(413, "too_many_items", detail)
        results, messages = route_items(elements, request.app.state.topics)
        accepted = len(messages)
        items_total.labels("rejected").inc(len(results) - accepted)
        if messages:
            try:
                await request.app.state.publisher.publish(messages)
            except PublishFailed as exc:
                items_total.labels("failed").inc(accepted)
                return error_response(503, "kafka_unavailable", str(exc))
            items_total.labels("accepted").inc(accepted)
        payload = {"accepted": accepted, "rejected": len(results) - accepted, "results": results}
        return OrjsonResponse(payload, status_code=200 if accepted else 400)
