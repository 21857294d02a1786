"""OpenAPI request bodies of the collector's routes that read the raw body.

``POST /v1/events`` and ``POST /v1/items`` parse the body themselves (any Content-Type, one
object or a list, each element validated on its own by ``pipeline.core``), so FastAPI cannot
derive their schemas from a model. These JSON Schemas describe the same contracts for the
OpenAPI document and ``/docs``; they document, they never validate (``pipeline.core.events``
and ``pipeline.core.items`` do).
"""

from __future__ import annotations

from typing import Any

from pipeline.core.events import (
    EVENT_TYPES,
    FORGET,
    MAX_CONTEXT_ENTRIES,
    MAX_CONTEXT_STRING,
    MAX_IMPRESSION_ITEMS,
)
from pipeline.core.ids import MAX_ID_LENGTH
from pipeline.core.items import (
    MAX_ATTRIBUTE_VALUES,
    MAX_ATTRIBUTES,
    MAX_CATEGORIES,
    MAX_DESCRIPTION,
    MAX_TITLE,
)

# A fixed instant keeps the examples stable; a real client sends its own clock.
EXAMPLE_MS = 1_767_225_600_000


def _id(description: str) -> dict[str, Any]:
    return {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_ID_LENGTH,
        "description": f"{description} 1-{MAX_ID_LENGTH} letters, digits and . : @ / + = - _",
    }


_TIMESTAMP = {
    "description": "Epoch milliseconds, or ISO-8601 with a UTC offset; 1973-2100.",
    "oneOf": [{"type": "integer"}, {"type": "string", "format": "date-time"}],
}

EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Event",
    "required": ["event_id", "type", "user_id", "timestamp"],
    "properties": {
        "event_id": _id("Unique per event: a resent event is applied once."),
        "type": {
            "type": "string",
            # `forget` is produced by DELETE /v1/users/{user_id}, not sent by websites.
            "enum": sorted(EVENT_TYPES - {FORGET}),
        },
        "user_id": _id("The user (or an anonymous id until `login`)."),
        "item_id": _id("The item; required except for `impression` and `login`."),
        "items": {
            "type": "array",
            "items": _id("An item shown."),
            "minItems": 1,
            "maxItems": MAX_IMPRESSION_ITEMS,
            "description": "`impression`: the items shown, in display order.",
        },
        "timestamp": _TIMESTAMP,
        "value": {
            "type": "number",
            "description": "`rate`: the rating 1-5 (required); `buy`: the quantity (> 0); "
            "`consume`: the fraction consumed, 0-1.",
        },
        "price": {"type": "number", "minimum": 0},
        "session_id": _id("The browsing session."),
        "recommendation_id": _id(
            "The `recommendation_id` of the recommendation answer the item came from "
            "(credits clicks and conversions to that scenario)."
        ),
        "previous_user_id": _id("`login`: the anonymous id now known as `user_id` (required)."),
        "context": {
            "type": "object",
            "maxProperties": MAX_CONTEXT_ENTRIES,
            "additionalProperties": {
                "oneOf": [{"type": "string", "maxLength": MAX_CONTEXT_STRING}, {"type": "number"}]
            },
            "description": "Request context: device, page, locale...",
        },
    },
    # Unknown fields are kept and passed on unchanged.
    "additionalProperties": True,
}

_ATTRIBUTE_VALUE = {
    "oneOf": [
        {"type": "string", "maxLength": MAX_CONTEXT_STRING},
        {"type": "number"},
        {"type": "boolean"},
    ]
}

ITEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Item",
    "required": ["item_id"],
    "properties": {
        "item_id": _id("The item; a later version replaces the earlier one whole."),
        "categories": {
            "type": "array",
            "items": _id("A category."),
            "maxItems": MAX_CATEGORIES,
        },
        "attributes": {
            "type": "object",
            "maxProperties": MAX_ATTRIBUTES,
            "additionalProperties": {
                "oneOf": [
                    _ATTRIBUTE_VALUE,
                    {"type": "array", "items": _ATTRIBUTE_VALUE, "maxItems": MAX_ATTRIBUTE_VALUES},
                ]
            },
            "description": "Attribute name (an id) -> value or list of values.",
        },
        "available": {
            "type": "boolean",
            "default": True,
            "description": "false keeps the item out of every list.",
        },
        "created_at": _TIMESTAMP,
        "price": {"type": "number", "minimum": 0},
        "title": {"type": "string", "maxLength": MAX_TITLE},
        "description": {
            "type": "string",
            "maxLength": MAX_DESCRIPTION,
            "description": "Free text; with the title it makes the item's content vector.",
        },
    },
}

CLICK = {
    "event_id": "e-1001",
    "type": "click",
    "user_id": "user-7",
    "item_id": "shoes/red-1",
    "timestamp": EXAMPLE_MS,
    "context": {"device": "mobile", "page": "home"},
}
BUY = {
    "event_id": "e-1002",
    "type": "buy",
    "user_id": "user-7",
    "item_id": "shoes/red-1",
    "timestamp": EXAMPLE_MS + 60_000,
    "value": 1,
    "price": 59.9,
    "recommendation_id": "home:5f0c2a9e",
}
IMPRESSION = {
    "event_id": "e-1000",
    "type": "impression",
    "user_id": "user-7",
    "items": ["shoes/red-1", "shoes/blue-2", "hat-3"],
    "timestamp": EXAMPLE_MS - 1000,
    "recommendation_id": "home:5f0c2a9e",
}
ITEM = {
    "item_id": "shoes/red-1",
    "categories": ["shoes", "sale"],
    "attributes": {"color": "red", "size": [41, 42, 43]},
    "available": True,
    "created_at": EXAMPLE_MS,
    "price": 59.9,
    "title": "Red running shoe",
}


def request_body(
    schema: dict[str, Any], max_count: int, examples: dict[str, Any]
) -> dict[str, Any]:
    """``openapi_extra`` declaring a body of one ``schema`` object or a list of at most
    ``max_count`` (any Content-Type is read as JSON; text/plain spares browsers a preflight)."""
    body = {"oneOf": [schema, {"type": "array", "items": schema, "maxItems": max_count}]}
    content = {"schema": body, "examples": examples}
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": content, "text/plain": {"schema": body}},
        }
    }


def events_body(max_events: int) -> dict[str, Any]:
    return request_body(
        EVENT_SCHEMA,
        max_events,
        {
            "click": {"summary": "A click", "value": CLICK},
            "buy": {"summary": "A purchase of a recommended item", "value": BUY},
            "batch": {
                "summary": "A batch: what was shown, a click, a purchase",
                "value": [IMPRESSION, CLICK, BUY],
            },
        },
    )


def items_body(max_items: int) -> dict[str, Any]:
    second = {"item_id": "hat-3", "categories": ["hats"], "price": 19.0, "title": "Wool hat"}
    gone = {"item_id": "shoes/blue-2", "available": False}
    return request_body(
        ITEM_SCHEMA,
        max_items,
        {
            "item": {"summary": "One item", "value": ITEM},
            "batch": {
                "summary": "A batch: two items, one withdrawn",
                "value": [ITEM, second, gone],
            },
        },
    )
