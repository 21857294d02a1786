"""The item contract (catalog topic, ``POST`` of items) and the one reader of stored item
fields.

A later version of an item replaces the earlier one whole. :func:`item_from_dict` validates
what producers send; :func:`stored_categories` and :func:`stored_attributes` read the fields
back from the catalog hash (``{p}:item:{item_id}``), tolerating anything malformed because
Redis is a public contract that others may write.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from pipeline.core.events import (
    MAX_CONTEXT_STRING,
    Rejection,
    optional_price,
    parse_record,
    parse_timestamp,
)
from pipeline.core.ids import InvalidInput, check_id, check_number, valid_id

MAX_CATEGORIES = 32
MAX_ATTRIBUTES = 64
MAX_ATTRIBUTE_VALUES = 64
MAX_TITLE = 512
# Descriptions feed the content vectors, which read at most this many characters of text.
MAX_DESCRIPTION = 8192


@dataclass(frozen=True, slots=True)
class Item:
    """One catalog record. A later version of the same ``item_id`` replaces it whole."""

    item_id: str
    categories: tuple[str, ...] = ()
    attributes: dict[str, Any] = field(default_factory=dict, hash=False)
    created_at_ms: int | None = None
    available: bool = True
    price: float | None = None
    title: str | None = None
    # Free text for the content vectors (features/content); not stored in the catalog hash.
    description: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "item_id": self.item_id,
            "categories": list(self.categories),
            "attributes": self.attributes,
            "available": self.available,
        }
        if self.created_at_ms is not None:
            out["created_at"] = self.created_at_ms
        if self.price is not None:
            out["price"] = self.price
        if self.title is not None:
            out["title"] = self.title
        if self.description is not None:
            out["description"] = self.description
        return out


def _attribute_value(value: object, name: str) -> str | float | int | bool:
    if isinstance(value, str):
        if len(value) > MAX_CONTEXT_STRING:
            raise InvalidInput(f"attributes[{name!r}] longer than {MAX_CONTEXT_STRING}")
        return value
    if isinstance(value, bool):
        return value
    check_number(value, f"attributes[{name!r}]")
    return value  # type: ignore[return-value]


def new_item_window(
    now_ms: float, new_item_days: float, max_future_skew_s: float
) -> tuple[float, float]:
    """The creation times (epoch ms, inclusive) of items that are *new* at ``now_ms``: created
    less than ``new_item_days`` before it, and not after it by more than
    ``max_future_skew_s`` (a catalog exported long after the events it is replayed with
    stamps the export's time, which says nothing of an item's age). Items without a
    creation time are never new. The one rule of the for-you blend and of exploration."""
    return now_ms - new_item_days * 86_400_000, now_ms + max_future_skew_s * 1000


def item_from_dict(raw: object) -> Item:
    """Validate one catalog record; raises :class:`InvalidInput` with the reason."""
    if not isinstance(raw, dict):
        raise InvalidInput("an item must be a JSON object")
    if "item_id" not in raw:
        raise InvalidInput("item_id is required")
    item_id = check_id(raw["item_id"], "item_id")
    categories = raw.get("categories", [])
    if not isinstance(categories, list) or len(categories) > MAX_CATEGORIES:
        raise InvalidInput(f"categories must be a list of at most {MAX_CATEGORIES} category ids")
    # Duplicates would count an event twice in one category's trending set.
    unique = tuple(dict.fromkeys(check_id(entry, "categories[]") for entry in categories))
    attributes = raw.get("attributes", {})
    if not isinstance(attributes, dict) or len(attributes) > MAX_ATTRIBUTES:
        raise InvalidInput(f"attributes must be an object of at most {MAX_ATTRIBUTES} entries")
    clean: dict[str, Any] = {}
    for name, value in attributes.items():
        check_id(name, "attribute name")
        if isinstance(value, list):
            clean[name] = [_attribute_value(entry, name) for entry in value[:MAX_ATTRIBUTE_VALUES]]
        else:
            clean[name] = _attribute_value(value, name)
    created_at = raw.get("created_at")
    available = raw.get("available", True)
    if not isinstance(available, bool):
        raise InvalidInput("available must be true or false")
    price = optional_price(raw)
    title = raw.get("title")
    if title is not None and (not isinstance(title, str) or len(title) > MAX_TITLE):
        raise InvalidInput(f"title must be a string of at most {MAX_TITLE} characters")
    description = raw.get("description")
    if description is not None and (
        not isinstance(description, str) or len(description) > MAX_DESCRIPTION
    ):
        raise InvalidInput(f"description must be a string of at most {MAX_DESCRIPTION} characters")
    return Item(
        item_id=item_id,
        categories=unique,
        attributes=clean,
        created_at_ms=None if created_at is None else parse_timestamp(created_at, "created_at"),
        available=available,
        price=price,
        title=title,
        description=description,
    )


def parse_item_message(raw: bytes | str | None) -> tuple[Item | None, Rejection | None]:
    """One catalog message to an item or a rejection. Never raises."""
    return parse_record(raw, item_from_dict)


# --- stored fields (the catalog hash) -----------------------------------------------------------


def _loads(raw: bytes | str | None) -> Any:
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


def stored_categories(raw: bytes | str | None) -> list[str]:
    """The ``categories`` field of a catalog hash: its valid ids; anything malformed is none."""
    decoded = _loads(raw)
    if not isinstance(decoded, list):
        return []
    return [category for category in decoded if valid_id(category)]


def stored_attributes(raw: bytes | str | None) -> dict[str, Any]:
    """The ``attributes`` field of a catalog hash; anything malformed reads as none."""
    decoded = _loads(raw)
    return decoded if isinstance(decoded, dict) else {}
