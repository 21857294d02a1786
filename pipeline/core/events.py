"""The event contract: parse with orjson, validate every field, never raise on bad input.

:func:`parse_message` turns the bytes of one Kafka message (a single event or a JSON array
of events, the batch envelope) into the valid events and a :class:`Rejection` with a reason
for every element that breaks the contract. The item (catalog) contract is in ``items.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

import orjson

from pipeline.core.ids import InvalidInput, check_id, check_ids, check_number

# A privacy request: every agent group removes what it keeps about the user (docs/privacy.md).
FORGET = "forget"
EVENT_TYPES = frozenset(
    {"click", "consume", "buy", "basket", "rate", "impression", "blacklist", "login", FORGET}
)
# Types whose event names no single item.
ITEMLESS_TYPES = frozenset({"impression", "login", FORGET})
# Fields a forget must not carry: it names only the user, so that no agent group can take it
# for an interaction with an item.
NOT_IN_FORGET = ("item_id", "items", "value", "price", "previous_user_id")

MAX_IMPRESSION_ITEMS = 100
MAX_CONTEXT_ENTRIES = 32
MAX_CONTEXT_STRING = 256
# Defaults of the input limits (settings ``max_message_bytes``, ``max_envelope_events``):
# checked before any element is validated, so one huge message costs one short rejection.
MAX_MESSAGE_BYTES = 1_048_576
MAX_BATCH_EVENTS = 10_000

# Epoch-millisecond bounds that catch seconds-instead-of-milliseconds and garbage, and admit
# historical logs from any era a real data set comes from (the lower bound is 10**11 ms,
# 1973-03-03: any epoch-seconds value of our era lies below it).
MIN_TIMESTAMP_MS = 100_000_000_000
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


def parse_timestamp(value: object, name: str = "timestamp") -> int:
    """ISO-8601 with an offset, or epoch milliseconds, to epoch milliseconds."""
    if type(value) is int and MIN_TIMESTAMP_MS <= value < MAX_TIMESTAMP_MS:
        return value  # the usual case, in one test
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidInput(f"{name} is not ISO-8601: {value[:40]!r}") from None
        if moment.tzinfo is None:
            raise InvalidInput(f"{name} needs a UTC offset (e.g. Z or +02:00)")
        millis = round(moment.timestamp() * 1000)
    else:
        millis_float = check_number(value, name)
        if millis_float != int(millis_float):
            raise InvalidInput(f"{name} in epoch milliseconds must be whole")
        millis = int(millis_float)
    if not MIN_TIMESTAMP_MS <= millis < MAX_TIMESTAMP_MS:
        raise InvalidInput(
            f"{name} must lie between 1973 and 2100 (epoch milliseconds, not seconds)"
        )
    return millis


def optional_price(raw: dict[str, Any]) -> float | None:
    """The optional ``price`` of an event or item: a finite number >= 0."""
    price = raw.get("price")
    if price is None:
        return None
    number = check_number(price, "price")
    if number < 0:
        raise InvalidInput("price must not be negative")
    return number


def _optional_id(raw: dict[str, Any], name: str) -> str | None:
    value = raw.get(name)
    if value is None:
        return None
    return check_id(value, name)


def check_context(value: object) -> dict[str, str | float | int]:
    """A context object: at most 32 entries of string -> short string or finite number."""
    if not isinstance(value, dict):
        raise InvalidInput("context must be an object")
    if len(value) > MAX_CONTEXT_ENTRIES:
        raise InvalidInput(f"context may have at most {MAX_CONTEXT_ENTRIES} entries")
    for key, entry in value.items():
        if not 1 <= len(key) <= 64:
            raise InvalidInput("context keys must be 1-64 characters")
        if isinstance(entry, str):
            if len(entry) > MAX_CONTEXT_STRING:
                raise InvalidInput(f"context[{key!r}] longer than {MAX_CONTEXT_STRING}")
        elif isinstance(entry, bool) or not isinstance(entry, int | float):
            raise InvalidInput(f"context[{key!r}] must be a string or a number")
        else:
            check_number(entry, f"context[{key!r}]")
    return value


class Event(NamedTuple):
    """One validated tracked event. ``extra`` keeps unknown fields untouched.

    Whether an event is positive feedback or a conversion is decided by
    :class:`pipeline.core.feedback.Feedback`, nowhere else.

    Immutable; a named tuple, not a frozen dataclass: every event a worker reads is built
    once, and a frozen dataclass sets each of its thirteen fields through
    ``object.__setattr__`` (1.4 µs an event against 0.4). The default ``context`` and
    ``extra`` are one shared empty dictionary: never change an event's. An event is not
    hashable (those two are dictionaries) and not JSON by itself (:meth:`to_dict` is its
    JSON form).
    """

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
    context: dict[str, Any] = {}
    extra: dict[str, Any] = {}

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

    Raises :class:`InvalidInput` with the reason. When ``now_ms`` and ``max_future_ms`` are
    given, timestamps further than that in the future are rejected.
    """
    if not isinstance(raw, dict):
        raise InvalidInput("an event must be a JSON object")
    if "event_id" not in raw:
        raise InvalidInput("event_id is required")
    event_id = check_id(raw["event_id"], "event_id")
    event_type = raw.get("type")
    if not isinstance(event_type, str) or event_type not in EVENT_TYPES:
        if event_type is None:
            raise InvalidInput("type is required")
        raise InvalidInput(f"type must be one of {', '.join(sorted(EVENT_TYPES))}")
    if "user_id" not in raw:
        raise InvalidInput("user_id is required")
    user_id = check_id(raw["user_id"], "user_id")
    if "timestamp" not in raw:
        raise InvalidInput("timestamp is required")
    timestamp_ms = parse_timestamp(raw["timestamp"])
    if now_ms is not None and max_future_ms is not None and timestamp_ms > now_ms + max_future_ms:
        raise InvalidInput("timestamp lies in the future")
    if event_type == FORGET:
        carried = [name for name in NOT_IN_FORGET if raw.get(name) is not None]
        if carried:
            raise InvalidInput(f"a forget names only the user; remove {', '.join(carried)}")

    item_id = raw.get("item_id")
    if item_id is not None or event_type not in ITEMLESS_TYPES:
        if item_id is None:
            raise InvalidInput(f"item_id is required for {event_type}")
        item_id = check_id(item_id, "item_id")

    items: tuple[str, ...] = ()
    if event_type == "impression" or "items" in raw:
        shown = raw.get("items")
        if not isinstance(shown, list) or not 1 <= len(shown) <= MAX_IMPRESSION_ITEMS:
            raise InvalidInput(f"items must be a list of 1-{MAX_IMPRESSION_ITEMS} item ids")
        items = check_ids(shown, "items[]")

    value = raw.get("value")
    if value is not None:
        value = check_number(value, "value")
        if event_type == "rate" and not 1 <= value <= 5:
            raise InvalidInput("value of a rate must lie in 1-5")
        if event_type == "consume" and not 0 <= value <= 1:
            raise InvalidInput("value of a consume is a fraction in 0-1")
        if event_type == "buy" and value <= 0:
            raise InvalidInput("value of a buy is a positive quantity")
    elif event_type == "rate":
        raise InvalidInput("value (the rating, 1-5) is required for rate")

    price = optional_price(raw)
    previous_user_id = _optional_id(raw, "previous_user_id")
    if event_type == "login" and previous_user_id is None:
        raise InvalidInput("previous_user_id is required for login")

    context = raw.get("context")
    context = {} if context is None else check_context(context)

    # Most events carry only known fields: one subset test instead of a pass over them.
    if raw.keys() <= _KNOWN_FIELDS:
        extra = {}
    else:
        extra = {key: entry for key, entry in raw.items() if key not in _KNOWN_FIELDS}
    # Positional, in the fields' order: a quarter less than by keyword, for every event.
    return Event(
        event_id,
        event_type,
        user_id,
        timestamp_ms,
        item_id,
        items,
        value,
        price,
        _optional_id(raw, "session_id"),
        _optional_id(raw, "recommendation_id"),
        previous_user_id,
        context,
        extra,
    )


def split_forgets(events: Sequence[Event]) -> tuple[list[Event], set[str]]:
    """Apply a batch's ``forget`` events: (the events that outlive them, the users forgotten).

    Order is timestamp order, ties in batch order (the order the personal engine learns in):
    an event of a user that comes before the user's last forget is dropped, because the
    forget erases it; the user's events after it start a new state. The returned events
    keep their batch order and hold no forget.
    """
    if not any(event.event_type == FORGET for event in events):
        return list(events), set()
    ordered = sorted(range(len(events)), key=lambda index: events[index].timestamp_ms)
    rank = {index: position for position, index in enumerate(ordered)}
    last_forget = {
        events[index].user_id: position
        for position, index in enumerate(ordered)
        if events[index].event_type == FORGET
    }
    kept = [
        event
        for index, event in enumerate(events)
        if event.event_type != FORGET and rank[index] > last_forget.get(event.user_id, -1)
    ]
    return kept, set(last_forget)


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why one message (or one element of a batch envelope, ``index``) was refused."""

    reason: str
    index: int | None = None


def decode_json(raw: bytes | str) -> Any:
    """orjson decode that reports failures as :class:`InvalidInput`."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"not valid JSON: {exc}") from None


R = TypeVar("R")


def parse_record(
    raw: bytes | str | None, build: Callable[[Any], R]
) -> tuple[R | None, Rejection | None]:
    """One message holding one record (an item, a user) to ``build(decoded JSON)`` or the
    rejection that says why not. Never raises: ``build`` reports bad input as
    :class:`InvalidInput`."""
    if raw is None:
        return None, Rejection("empty message (no value)")
    try:
        return build(decode_json(raw)), None
    except InvalidInput as exc:
        return None, Rejection(str(exc))


def parse_message(
    raw: bytes | str | None,
    now_ms: int | None = None,
    max_future_ms: int | None = None,
    max_bytes: int = MAX_MESSAGE_BYTES,
    max_events: int = MAX_BATCH_EVENTS,
) -> tuple[list[Event], list[Rejection]]:
    """Split one Kafka message into valid events and rejections. Never raises.

    A message over ``max_bytes`` is rejected whole before it is parsed, and an envelope of
    more than ``max_events`` elements before any element is validated: each gives a single
    rejection, whatever the size of the input.
    """
    if raw is None:
        return [], [Rejection("empty message (no value)")]
    size = len(raw) if isinstance(raw, bytes) else len(raw.encode("utf-8", "replace"))
    if size > max_bytes:
        return [], [Rejection(f"message too large: {size} bytes > {max_bytes}")]
    try:
        decoded = decode_json(raw)
    except InvalidInput as exc:
        return [], [Rejection(str(exc))]
    if isinstance(decoded, list):
        if not decoded:
            return [], [Rejection("empty batch envelope")]
        if len(decoded) > max_events:
            return [], [Rejection(f"envelope too long: {len(decoded)} events > {max_events}")]
        events: list[Event] = []
        rejections: list[Rejection] = []
        for index, element in enumerate(decoded):
            try:
                events.append(event_from_dict(element, now_ms, max_future_ms))
            except InvalidInput as exc:
                rejections.append(Rejection(str(exc), index))
        return events, rejections
    try:
        return [event_from_dict(decoded, now_ms, max_future_ms)], []
    except InvalidInput as exc:
        return [], [Rejection(str(exc))]
