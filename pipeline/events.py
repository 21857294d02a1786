"""The event and item contracts (DESIGN.md): parse with orjson, validate every field.

Parsing never raises on bad input. :func:`parse_message` turns the bytes of one Kafka
message (a single event or a JSON array of events, the batch envelope) into the valid
events and a :class:`Rejection` with a reason for every element that breaks the contract.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

EVENT_TYPES = frozenset(
    {"click", "consume", "buy", "basket", "rate", "impression", "blacklist", "login"}
)
# Types whose event names no single item.
ITEMLESS_TYPES = frozenset({"impression", "login"})
CONVERSION_TYPES = frozenset({"buy", "consume", "basket"})

MAX_ID_LENGTH = 128
MAX_IMPRESSION_ITEMS = 100
MAX_CONTEXT_ENTRIES = 32
MAX_CONTEXT_STRING = 256
MAX_BATCH_EVENTS = 10_000

# Ids end up inside Redis keys and URLs: no whitespace, control characters, braces
# (Redis Cluster hash tags) or quotes. Unicode letters and digits are fine.
ID_PATTERN = re.compile(r"[\w.:@/+=-]{1,128}")

# Epoch-millisecond bounds that catch seconds-instead-of-milliseconds and garbage.
MIN_TIMESTAMP_MS = 946_684_800_000  # 2000-01-01
MAX_TIMESTAMP_MS = 4_102_444_800_000  # 2100-01-01

_KNOWN_FIELDS = frozenset(
    {
        "event_id",
        "type",
        "user_id",
        "item_id",
        "items",
        "timestamp",
        "value",
        "price",
        "session_id",
        "recommendation_id",
        "previous_user_id",
        "context",
    }
)


class InvalidEvent(ValueError):
    """A contract violation; ``str(exc)`` is the reason given to the sender."""


def valid_id(value: object) -> bool:
    """True when ``value`` may be used as a user, item, category or session id."""
    return isinstance(value, str) and ID_PATTERN.fullmatch(value) is not None


def check_id(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise InvalidEvent(f"{name} must be a string")
    if not 1 <= len(value) <= MAX_ID_LENGTH:
        raise InvalidEvent(f"{name} must be 1-{MAX_ID_LENGTH} characters")
    if ID_PATTERN.fullmatch(value) is None:
        raise InvalidEvent(f"{name} may contain only letters, digits and . : @ / + = - _")
    return value


# orjson refuses integers beyond 64 bits; pydantic bodies in the reader do not, and 10**400
# would not even convert to float. Hold both paths to the same limit.
MAX_INT = 2**64


def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidEvent(f"{name} must be a number")
    if isinstance(value, int) and abs(value) >= MAX_INT:
        raise InvalidEvent(f"{name} is too large")
    number = float(value)
    if not math.isfinite(number):
        raise InvalidEvent(f"{name} must be finite")
    return number


def parse_timestamp(value: object, name: str = "timestamp") -> int:
    """ISO-8601 with an offset, or epoch milliseconds, to epoch milliseconds."""
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidEvent(f"{name} is not ISO-8601: {value[:40]!r}") from None
        if moment.tzinfo is None:
            raise InvalidEvent(f"{name} needs a UTC offset (e.g. Z or +02:00)")
        millis = round(moment.timestamp() * 1000)
    else:
        millis_float = _number(value, name)
        if millis_float != int(millis_float):
            raise InvalidEvent(f"{name} in epoch milliseconds must be whole")
        millis = int(millis_float)
    if not MIN_TIMESTAMP_MS <= millis < MAX_TIMESTAMP_MS:
        raise InvalidEvent(f"{name} must lie between 2000 and 2100 (epoch milliseconds?)")
    return millis


def _optional_string(raw: dict[str, Any], name: str) -> str | None:
    value = raw.get(name)
    if value is None:
        return None
    return check_id(value, name)


def check_context(value: object) -> dict[str, str | float | int]:
    if not isinstance(value, dict):
        raise InvalidEvent("context must be an object")
    if len(value) > MAX_CONTEXT_ENTRIES:
        raise InvalidEvent(f"context may have at most {MAX_CONTEXT_ENTRIES} entries")
    for key, entry in value.items():
        if not 1 <= len(key) <= 64:
            raise InvalidEvent("context keys must be 1-64 characters")
        if isinstance(entry, str):
            if len(entry) > MAX_CONTEXT_STRING:
                raise InvalidEvent(f"context[{key!r}] longer than {MAX_CONTEXT_STRING}")
        elif isinstance(entry, bool) or not isinstance(entry, int | float):
            raise InvalidEvent(f"context[{key!r}] must be a string or a number")
        else:
            _number(entry, f"context[{key!r}]")
    return value


@dataclass(frozen=True, slots=True)
class Event:
    """One validated tracked event. ``extra`` keeps unknown fields untouched."""

    event_id: str
    event_type: str
    user_id: str
    timestamp_ms: int
    item_id: str | None = None
    items: tuple[str, ...] = ()
    value: float | None = None
    price: float | None = None
    session_id: str | None = None
    recommendation_id: str | None = None
    previous_user_id: str | None = None
    context: dict[str, Any] = field(default_factory=dict, compare=True, hash=False)
    extra: dict[str, Any] = field(default_factory=dict, compare=True, hash=False)

    def is_positive(self, positive_rating: float = 4.0) -> bool:
        """Conversions and clicks always; ratings from ``positive_rating`` up (DESIGN.md)."""
        if self.event_type == "rate":
            return self.value is not None and self.value >= positive_rating
        return self.event_type in CONVERSION_TYPES or self.event_type == "click"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.extra)
        out.update(
            event_id=self.event_id,
            type=self.event_type,
            user_id=self.user_id,
            timestamp=self.timestamp_ms,
        )
        if self.item_id is not None:
            out["item_id"] = self.item_id
        if self.items:
            out["items"] = list(self.items)
        for name in ("value", "price", "session_id", "recommendation_id", "previous_user_id"):
            attribute = getattr(self, name)
            if attribute is not None:
                out[name] = attribute
        if self.context:
            out["context"] = self.context
        return out

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())


def event_from_dict(
    raw: object, now_ms: int | None = None, max_future_ms: int | None = None
) -> Event:
    """Validate one decoded JSON value against the event contract.

    Raises :class:`InvalidEvent` with the reason. When ``now_ms`` and ``max_future_ms`` are
    given, timestamps further than that in the future are rejected.
    """
    if not isinstance(raw, dict):
        raise InvalidEvent("an event must be a JSON object")
    event_id = check_id(raw.get("event_id"), "event_id") if "event_id" in raw else None
    if event_id is None:
        raise InvalidEvent("event_id is required")
    event_type = raw.get("type")
    if not isinstance(event_type, str) or event_type not in EVENT_TYPES:
        if event_type is None:
            raise InvalidEvent("type is required")
        raise InvalidEvent(f"type must be one of {', '.join(sorted(EVENT_TYPES))}")
    if "user_id" not in raw:
        raise InvalidEvent("user_id is required")
    user_id = check_id(raw["user_id"], "user_id")
    if "timestamp" not in raw:
        raise InvalidEvent("timestamp is required")
    timestamp_ms = parse_timestamp(raw["timestamp"])
    if now_ms is not None and max_future_ms is not None and timestamp_ms > now_ms + max_future_ms:
        raise InvalidEvent("timestamp lies in the future")

    item_id = raw.get("item_id")
    if item_id is not None or event_type not in ITEMLESS_TYPES:
        if item_id is None:
            raise InvalidEvent(f"item_id is required for {event_type}")
        item_id = check_id(item_id, "item_id")

    items: tuple[str, ...] = ()
    if event_type == "impression" or "items" in raw:
        shown = raw.get("items")
        if not isinstance(shown, list) or not 1 <= len(shown) <= MAX_IMPRESSION_ITEMS:
            raise InvalidEvent(f"items must be a list of 1-{MAX_IMPRESSION_ITEMS} item ids")
        items = tuple(check_id(entry, "items[]") for entry in shown)

    value = raw.get("value")
    if value is not None:
        value = _number(value, "value")
        if event_type == "rate" and not 1 <= value <= 5:
            raise InvalidEvent("value of a rate must lie in 1-5")
        if event_type == "consume" and not 0 <= value <= 1:
            raise InvalidEvent("value of a consume is a fraction in 0-1")
        if event_type == "buy" and value <= 0:
            raise InvalidEvent("value of a buy is a positive quantity")
    elif event_type == "rate":
        raise InvalidEvent("value (the rating, 1-5) is required for rate")

    price = raw.get("price")
    if price is not None:
        price = _number(price, "price")
        if price < 0:
            raise InvalidEvent("price must not be negative")

    previous_user_id = _optional_string(raw, "previous_user_id")
    if event_type == "login" and previous_user_id is None:
        raise InvalidEvent("previous_user_id is required for login")

    context = raw.get("context")
    context = {} if context is None else check_context(context)

    extra = {key: entry for key, entry in raw.items() if key not in _KNOWN_FIELDS}
    return Event(
        event_id=event_id,
        event_type=event_type,
        user_id=user_id,
        timestamp_ms=timestamp_ms,
        item_id=item_id,
        items=items,
        value=value,
        price=price,
        session_id=_optional_string(raw, "session_id"),
        recommendation_id=_optional_string(raw, "recommendation_id"),
        previous_user_id=previous_user_id,
        context=context,
        extra=extra,
    )


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why one message (or one element of a batch envelope, ``index``) was refused."""

    reason: str
    index: int | None = None


def decode_json(raw: bytes | str) -> Any:
    """orjson decode that reports failures as :class:`InvalidEvent`."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(f"not valid JSON: {exc}") from None


def parse_message(
    raw: bytes | str | None, now_ms: int | None = None, max_future_ms: int | None = None
) -> tuple[list[Event], list[Rejection]]:
    """Split one Kafka message into valid events and rejections. Never raises."""
    if raw is None:
        return [], [Rejection("empty message (no value)")]
    try:
        decoded = decode_json(raw)
    except InvalidEvent as exc:
        return [], [Rejection(str(exc))]
    if isinstance(decoded, list):
        if not decoded:
            return [], [Rejection("empty batch envelope")]
        if len(decoded) > MAX_BATCH_EVENTS:
            return [], [Rejection(f"batch envelope holds more than {MAX_BATCH_EVENTS} events")]
        events: list[Event] = []
        rejections: list[Rejection] = []
        for index, element in enumerate(decoded):
            try:
                events.append(event_from_dict(element, now_ms, max_future_ms))
            except InvalidEvent as exc:
                rejections.append(Rejection(str(exc), index))
        return events, rejections
    try:
        return [event_from_dict(decoded, now_ms, max_future_ms)], []
    except InvalidEvent as exc:
        return [], [Rejection(str(exc))]


# --- items (catalog topic) -----------------------------------------------------------------


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
        return out


def _attribute_value(value: object, name: str) -> str | float | int | bool:
    if isinstance(value, str):
        if len(value) > MAX_CONTEXT_STRING:
            raise InvalidEvent(f"attributes[{name!r}] longer than {MAX_CONTEXT_STRING}")
        return value
    if isinstance(value, bool):
        return value
    _number(value, f"attributes[{name!r}]")
    return value  # type: ignore[return-value]


def item_from_dict(raw: object) -> Item:
    """Validate one catalog record; raises :class:`InvalidEvent` with the reason."""
    if not isinstance(raw, dict):
        raise InvalidEvent("an item must be a JSON object")
    if "item_id" not in raw:
        raise InvalidEvent("item_id is required")
    item_id = check_id(raw["item_id"], "item_id")
    categories = raw.get("categories", [])
    if not isinstance(categories, list) or len(categories) > 32:
        raise InvalidEvent("categories must be a list of at most 32 category ids")
    # Duplicates would count an event twice in one category's trending set.
    categories = tuple(dict.fromkeys(check_id(entry, "categories[]") for entry in categories))
    attributes = raw.get("attributes", {})
    if not isinstance(attributes, dict) or len(attributes) > 64:
        raise InvalidEvent("attributes must be an object of at most 64 entries")
    clean: dict[str, Any] = {}
    for name, value in attributes.items():
        check_id(name, "attribute name")
        if isinstance(value, list):
            clean[name] = [_attribute_value(entry, name) for entry in value[:64]]
        else:
            clean[name] = _attribute_value(value, name)
    created_at = raw.get("created_at")
    available = raw.get("available", True)
    if not isinstance(available, bool):
        raise InvalidEvent("available must be true or false")
    price = raw.get("price")
    if price is not None:
        price = _number(price, "price")
        if price < 0:
            raise InvalidEvent("price must not be negative")
    title = raw.get("title")
    if title is not None and (not isinstance(title, str) or len(title) > 512):
        raise InvalidEvent("title must be a string of at most 512 characters")
    return Item(
        item_id=item_id,
        categories=categories,
        attributes=clean,
        created_at_ms=None if created_at is None else parse_timestamp(created_at, "created_at"),
        available=available,
        price=price,
        title=title,
    )


def parse_item_message(raw: bytes | str | None) -> tuple[Item | None, Rejection | None]:
    """One catalog message to an item or a rejection. Never raises."""
    if raw is None:
        return None, Rejection("empty message (no value)")
    try:
        return item_from_dict(decode_json(raw)), None
    except InvalidEvent as exc:
        return None, Rejection(str(exc))
