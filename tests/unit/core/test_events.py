"""The event contract (README, "The event contract"): valid input parses and round-trips, every
rule rejects what breaks it with a reason, and parsing never raises on any input.
"""

from __future__ import annotations

import math
from datetime import UTC, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.core.events import (
    EVENT_TYPES,
    FORGET,
    ITEMLESS_TYPES,
    MAX_BATCH_EVENTS,
    MAX_MESSAGE_BYTES,
    MAX_TIMESTAMP_MS,
    MIN_TIMESTAMP_MS,
    Event,
    Rejection,
    check_context,
    event_from_dict,
    parse_message,
    parse_timestamp,
)
from pipeline.core.ids import InvalidInput
from tests.unit.core.helpers import (
    BASE,
    DROP,
    KNOWN_FIELDS,
    TS,
    epoch_ms,
    ids,
    iso,
    json_scalars,
    json_values,
    make,
    offsets,
    short_ids,
    timestamps,
)

FAST = settings(max_examples=150, deadline=None, database=None)
FUZZ = settings(max_examples=200, deadline=None, database=None)

finite_floats = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False)
numbers = st.integers(min_value=-(10**6), max_value=10**6) | finite_floats
context_values = st.text(max_size=256) | st.integers(-(2**63), 2**63 - 1) | finite_floats
contexts = st.dictionaries(st.text(min_size=1, max_size=64), context_values, max_size=32)
extra_fields = st.dictionaries(
    st.text(max_size=12).filter(lambda key: key not in KNOWN_FIELDS), json_values, max_size=3
)


@st.composite
def valid_events(draw: st.DrawFn, event_type: str | None = None) -> tuple[dict[str, Any], int]:
    """(a valid raw event, its timestamp in epoch milliseconds)."""
    kind = event_type or draw(st.sampled_from(sorted(EVENT_TYPES)))
    wire_ts, ms = draw(timestamps())
    raw: dict[str, Any] = draw(extra_fields)
    raw.update(event_id=draw(ids), type=kind, user_id=draw(ids), timestamp=wire_ts)
    # A forget names only the user (no item, value or price).
    if kind not in ITEMLESS_TYPES or (kind != FORGET and draw(st.booleans())):
        raw["item_id"] = draw(ids)
    if kind == "impression":
        raw["items"] = draw(st.lists(short_ids, min_size=1, max_size=100))
    if kind == "rate":
        raw["value"] = draw(st.integers(1, 5) | st.floats(1, 5))
    elif kind == "consume":
        value = draw(st.none() | st.sampled_from([0, 1]) | st.floats(0, 1))
        if value is not None:
            raw["value"] = value
    elif kind == "buy":
        value = draw(st.none() | st.integers(1, 1000) | st.floats(1e-6, 1e6))
        if value is not None:
            raw["value"] = value
        price = draw(st.none() | st.integers(0, 10**6) | st.floats(0, 1e6))
        if price is not None:
            raw["price"] = price
    elif kind != FORGET and draw(st.booleans()):
        raw["value"] = draw(numbers)
    if kind == "login":
        raw["previous_user_id"] = draw(ids)
    for name in ("session_id", "recommendation_id"):
        # Absent, null (the same as absent) or a valid id.
        choice = draw(st.sampled_from(["absent", "null", "id"]))
        if choice == "null":
            raw[name] = None
        elif choice == "id":
            raw[name] = draw(ids)
    if draw(st.booleans()):
        raw["context"] = draw(contexts)
    return raw, ms


def as_json(raw: Any) -> bytes:
    return orjson.dumps(raw)


# --- valid events --------------------------------------------------------------------------


@FAST
@given(valid_events())
def test_valid_events_parse_with_every_field_kept(case: tuple[dict[str, Any], int]) -> None:
    raw, ms = case
    event = event_from_dict(raw)
    assert event.event_id == raw["event_id"]
    assert event.event_type == raw["type"]
    assert event.user_id == raw["user_id"]
    assert event.timestamp_ms == ms
    assert event.item_id == raw.get("item_id")
    assert event.items == tuple(raw.get("items", ()))
    for name in ("value", "price", "session_id", "recommendation_id", "previous_user_id"):
        assert getattr(event, name) == raw.get(name)
    assert event.context == (raw.get("context") or {})
    assert event.extra == {k: v for k, v in raw.items() if k not in KNOWN_FIELDS}


@FAST
@given(valid_events())
def test_events_round_trip_through_json(case: tuple[dict[str, Any], int]) -> None:
    event = event_from_dict(case[0])
    events, rejections = parse_message(event.to_json())
    assert rejections == []
    assert events == [event]
    # The wire form is stable: a second trip gives the same bytes.
    assert events[0].to_json() == event.to_json()


@FAST
@given(valid_events())
def test_parse_message_accepts_bytes_and_str(case: tuple[dict[str, Any], int]) -> None:
    encoded = as_json(case[0])
    from_bytes = parse_message(encoded)
    assert from_bytes == parse_message(encoded.decode())
    assert from_bytes == ([event_from_dict(case[0])], [])


@FAST
@given(epoch_ms, offsets)
def test_iso_timestamps_with_any_offset_mean_the_same_instant(ms: int, tz: timezone) -> None:
    assert parse_timestamp(iso(ms, tz)) == ms
    assert parse_timestamp(iso(ms, UTC).replace("+00:00", "Z")) == ms
    assert parse_timestamp(ms) == ms
    assert parse_timestamp(float(ms)) == ms


@st.composite
def invalid_events(draw: st.DrawFn) -> Any:
    """Valid events broken in one way, and values that are not events at all."""
    raw, _ = draw(valid_events())
    breakage = draw(st.sampled_from(["drop", "bad_id", "bad_type", "bad_timestamp", "not_object"]))
    if breakage == "drop":
        del raw[draw(st.sampled_from(["event_id", "type", "user_id", "timestamp"]))]
    elif breakage == "bad_id":
        raw[draw(st.sampled_from(["event_id", "user_id"]))] = draw(
            st.sampled_from(["", "a b", "{tag}", "x" * 129, 7, None])
        )
    elif breakage == "bad_type":
        raw["type"] = draw(st.sampled_from(["view", "", "CLICK", 1, None]))
    elif breakage == "bad_timestamp":
        raw["timestamp"] = draw(
            st.sampled_from([1_700_000_000, "2024-01-01T00:00:00", "soon", True, 1.5e12 + 0.5])
        )
    else:
        return draw(json_scalars | st.lists(json_scalars, max_size=2))
    return raw


@FAST
@given(st.lists(st.booleans(), min_size=1, max_size=8), st.data())
def test_batch_envelope_yields_valid_events_and_indexed_rejections(
    plan: list[bool], data: st.DataObject
) -> None:
    elements: list[Any] = []
    expected_events: list[Event] = []
    expected_bad: list[int] = []
    for index, valid in enumerate(plan):
        if valid:
            raw, _ = data.draw(valid_events())
            expected_events.append(event_from_dict(raw))
        else:
            raw = data.draw(invalid_events())
            expected_bad.append(index)
        elements.append(raw)
    events, rejections = parse_message(as_json(elements))
    assert events == expected_events
    assert [rejection.index for rejection in rejections] == expected_bad
    assert all(rejection.reason for rejection in rejections)


def test_batch_envelope_limits() -> None:
    assert parse_message(b"[]") == ([], [Rejection("empty batch envelope")])
    events, rejections = parse_message(as_json([1] * (MAX_BATCH_EVENTS + 1)))
    assert events == []
    assert len(rejections) == 1
    assert rejections[0].index is None
    assert rejections[0].reason == f"envelope too long: {MAX_BATCH_EVENTS + 1} events > 10000"
    # At the limit, every element is validated on its own.
    events, rejections = parse_message(as_json([1] * MAX_BATCH_EVENTS))
    assert [rejection.index for rejection in rejections] == list(range(MAX_BATCH_EVENTS))


def test_envelope_length_is_checked_before_any_element() -> None:
    events, rejections = parse_message(as_json([{"bad": 1}] * 3), max_events=2)
    assert (events, rejections) == ([], [Rejection("envelope too long: 3 events > 2")])


def test_a_message_over_the_size_limit_is_refused_unparsed() -> None:
    assert MAX_MESSAGE_BYTES == 1_048_576
    huge = b"\xff" * (MAX_MESSAGE_BYTES + 1)
    assert parse_message(huge) == (
        [],
        [Rejection(f"message too large: {MAX_MESSAGE_BYTES + 1} bytes > {MAX_MESSAGE_BYTES}")],
    )
    small = b'{"type": "click"}'
    assert parse_message(small, max_bytes=len(small)) == ([], [Rejection("event_id is required")])
    events, rejections = parse_message(small, max_bytes=len(small) - 1)
    assert rejections == [Rejection(f"message too large: {len(small)} bytes > {len(small) - 1}")]


def test_single_event_rejection_has_no_index() -> None:
    events, rejections = parse_message(b'{"type": "click"}')
    assert events == []
    assert rejections == [Rejection("event_id is required")]


# --- never raises --------------------------------------------------------------------------

# Event-shaped objects: known field names with arbitrary values. ``type`` stays hashable:
# unhashable types raise today (see test_unhashable_type_is_rejected_not_raised).
event_like = st.fixed_dictionaries(
    {},
    optional={
        **{name: json_values | short_ids | epoch_ms for name in KNOWN_FIELDS},
        "type": st.sampled_from(sorted(EVENT_TYPES)) | json_scalars,
        "timestamp": json_scalars | epoch_ms | timestamps().map(lambda pair: pair[0]),
        "items": st.lists(short_ids | json_scalars, max_size=3) | json_values,
        "context": st.dictionaries(st.text(max_size=3), json_values, max_size=3) | json_values,
    },
)


def check_outcome(outcome: tuple[list[Event], list[Rejection]]) -> None:
    events, rejections = outcome
    assert all(isinstance(event, Event) for event in events)
    assert all(isinstance(r, Rejection) and r.reason.strip() for r in rejections)
    assert events or rejections


@FUZZ
@given(st.binary())
def test_parse_message_never_raises_on_bytes(raw: bytes) -> None:
    check_outcome(parse_message(raw))


@FUZZ
@given(st.text())
def test_parse_message_never_raises_on_text(raw: str) -> None:
    check_outcome(parse_message(raw))


@FUZZ
@given(json_values | event_like | st.lists(event_like, max_size=4))
def test_parse_message_never_raises_on_json(value: Any) -> None:
    events, rejections = parse_message(as_json(value))
    check_outcome((events, rejections))
    if isinstance(value, list) and value:
        assert len(events) + len(rejections) == len(value)
        assert all(r.index is not None and 0 <= r.index < len(value) for r in rejections)
    else:
        assert len(events) + len(rejections) == 1


def test_parse_message_of_nothing() -> None:
    events, rejections = parse_message(None)
    assert events == []
    assert len(rejections) == 1
    assert rejections[0].reason


@pytest.mark.parametrize("bad_type", [[], {}, ["click"], {"click": 1}])
def test_unhashable_type_is_rejected_not_raised(bad_type: Any) -> None:
    raw = {"event_id": "e1", "type": bad_type, "user_id": "u1", "timestamp": 1_700_000_000_000}
    events, rejections = parse_message(as_json(raw))
    assert events == []
    assert len(rejections) == 1
    assert "type" in rejections[0].reason


# --- the contract, rule by rule ------------------------------------------------------------


def test_every_base_event_is_valid() -> None:
    assert set(BASE) == EVENT_TYPES
    for event_type in BASE:
        assert parse_message(as_json(make(event_type)))[1] == []


REJECTED: list[tuple[str, dict[str, Any], str]] = [
    # required fields
    ("click", {"event_id": DROP}, "event_id is required"),
    ("click", {"type": DROP}, "type is required"),
    ("click", {"type": None}, "type is required"),
    ("click", {"user_id": DROP}, "user_id is required"),
    ("click", {"timestamp": DROP}, "timestamp is required"),
    ("click", {"type": "view"}, "type must be one of"),
    ("click", {"type": "Click"}, "type must be one of"),
    ("click", {"type": 3}, "type must be one of"),
    # ids
    ("click", {"event_id": ""}, "event_id must be 1-128 characters"),
    ("click", {"event_id": "e" * 129}, "event_id must be 1-128 characters"),
    ("click", {"event_id": None}, "event_id must be a string"),
    ("click", {"event_id": 17}, "event_id must be a string"),
    ("click", {"user_id": "john doe"}, "user_id may contain only"),
    ("click", {"user_id": "u\t1"}, "user_id may contain only"),
    ("click", {"user_id": "u\n"}, "user_id may contain only"),
    ("click", {"user_id": "{u1}"}, "user_id may contain only"),
    ("click", {"user_id": 'u"1'}, "user_id may contain only"),
    ("click", {"user_id": "u" * 129}, "user_id must be 1-128 characters"),
    ("click", {"item_id": "a b"}, "item_id may contain only"),
    ("click", {"item_id": "{hash}tag"}, "item_id may contain only"),
    ("click", {"item_id": ""}, "item_id must be 1-128 characters"),
    ("click", {"session_id": "s 1"}, "session_id may contain only"),
    ("click", {"recommendation_id": ["r1"]}, "recommendation_id must be a string"),
    # item_id is required except for impression and login
    *[
        (event_type, {"item_id": DROP}, f"item_id is required for {event_type}")
        for event_type in sorted(EVENT_TYPES - ITEMLESS_TYPES)
    ],
    ("impression", {"item_id": "bad id"}, "item_id may contain only"),
    # items: required for impression, 1-100 valid ids
    ("impression", {"items": DROP}, "items must be a list of 1-100 item ids"),
    ("impression", {"items": []}, "items must be a list of 1-100 item ids"),
    ("impression", {"items": [f"i{n}" for n in range(101)]}, "items must be a list of 1-100"),
    ("impression", {"items": "i1"}, "items must be a list of 1-100 item ids"),
    ("impression", {"items": {"i1": 1}}, "items must be a list of 1-100 item ids"),
    ("impression", {"items": ["i1", "i 2"]}, "items[] may contain only"),
    ("impression", {"items": ["i1", 2]}, "items[] must be a string"),
    # Traps of checking the list in one match (ids joined by newlines): an id holding the
    # separator, an empty id between two, an id one character too long.
    ("impression", {"items": ["i1", "i2\ni3"]}, "items[] may contain only"),
    ("impression", {"items": ["i1", "\n"]}, "items[] may contain only"),
    ("impression", {"items": ["i1", "", "i2"]}, "items[] must be 1-128 characters"),
    ("impression", {"items": ["i1", "x" * 129]}, "items[] must be 1-128 characters"),
    ("click", {"items": []}, "items must be a list of 1-100 item ids"),
    # value per type
    ("rate", {"value": DROP}, "value (the rating, 1-5) is required for rate"),
    ("rate", {"value": None}, "value (the rating, 1-5) is required for rate"),
    ("rate", {"value": 0}, "value of a rate must lie in 1-5"),
    ("rate", {"value": 0.999}, "value of a rate must lie in 1-5"),
    ("rate", {"value": 5.001}, "value of a rate must lie in 1-5"),
    ("rate", {"value": 10}, "value of a rate must lie in 1-5"),
    ("rate", {"value": "4"}, "value must be a number"),
    ("consume", {"value": -0.01}, "value of a consume is a fraction in 0-1"),
    ("consume", {"value": 1.01}, "value of a consume is a fraction in 0-1"),
    ("consume", {"value": 50}, "value of a consume is a fraction in 0-1"),
    ("buy", {"value": 0}, "value of a buy is a positive quantity"),
    ("buy", {"value": -1}, "value of a buy is a positive quantity"),
    ("buy", {"price": -0.01}, "price must not be negative"),
    ("buy", {"price": "9.99"}, "price must be a number"),
    # login
    ("login", {"previous_user_id": DROP}, "previous_user_id is required for login"),
    ("login", {"previous_user_id": None}, "previous_user_id is required for login"),
    ("login", {"previous_user_id": "anon 1"}, "previous_user_id may contain only"),
    # timestamps
    ("click", {"timestamp": "2024-05-01T12:00:00"}, "timestamp needs a UTC offset"),
    ("click", {"timestamp": "2024-05-01"}, "timestamp needs a UTC offset"),
    ("click", {"timestamp": "yesterday"}, "timestamp is not ISO-8601"),
    ("click", {"timestamp": ""}, "timestamp is not ISO-8601"),
    ("click", {"timestamp": 1_700_000_000}, "timestamp must lie between 1973 and 2100"),
    ("click", {"timestamp": 1_700_000_000.0}, "timestamp must lie between 1973 and 2100"),
    ("click", {"timestamp": MIN_TIMESTAMP_MS - 1}, "timestamp must lie between 1973 and 2100"),
    ("click", {"timestamp": MAX_TIMESTAMP_MS}, "timestamp must lie between 1973 and 2100"),
    ("click", {"timestamp": 1_700_000_000_000_000}, "timestamp must lie between 1973 and 2100"),
    ("click", {"timestamp": -TS}, "timestamp must lie between 1973 and 2100"),
    ("click", {"timestamp": "1973-03-03T09:46:39Z"}, "timestamp must lie between 1973 and 2100"),
    ("click", {"timestamp": "2100-01-01T00:00:00Z"}, "timestamp must lie between 1973 and 2100"),
    ("click", {"timestamp": TS + 0.5}, "timestamp in epoch milliseconds must be whole"),
    ("click", {"timestamp": None}, "timestamp must be a number"),
    ("click", {"timestamp": [TS]}, "timestamp must be a number"),
    # booleans are not numbers
    ("click", {"timestamp": True}, "timestamp must be a number"),
    ("rate", {"value": True}, "value must be a number"),
    ("consume", {"value": False}, "value must be a number"),
    ("buy", {"price": False}, "price must be a number"),
    ("click", {"context": {"ab": True}}, "context['ab'] must be a string or a number"),
    # context
    ("click", {"context": ["device", "ios"]}, "context must be an object"),
    ("click", {"context": "ios"}, "context must be an object"),
    ("click", {"context": {"": "x"}}, "context keys must be 1-64 characters"),
    ("click", {"context": {"k" * 65: "x"}}, "context keys must be 1-64 characters"),
    ("click", {"context": {"page": "p" * 257}}, "context['page'] longer than 256"),
    ("click", {"context": {"page": None}}, "context['page'] must be a string or a number"),
    ("click", {"context": {"tags": ["a"]}}, "context['tags'] must be a string or a number"),
    ("click", {"context": {"geo": {"lat": 1}}}, "context['geo'] must be a string or a number"),
    ("click", {"context": {f"k{n}": n for n in range(33)}}, "context may have at most 32"),
]


@pytest.mark.parametrize(
    ("event_type", "changes", "reason"),
    REJECTED,
    ids=[f"{t}-{sorted(c)}-{r[:30]}" for t, c, r in REJECTED],
)
def test_contract_rules_reject_with_reason(
    event_type: str, changes: dict[str, Any], reason: str
) -> None:
    raw = make(event_type, **changes)
    with pytest.raises(InvalidInput) as caught:
        event_from_dict(raw)
    assert str(caught.value).startswith(reason)
    # The same through the message path, as a single event and inside a batch envelope.
    assert parse_message(as_json(raw)) == ([], [Rejection(str(caught.value))])
    events, rejections = parse_message(as_json([make("click"), raw]))
    assert len(events) == 1
    assert rejections == [Rejection(str(caught.value), 1)]


ACCEPTED: list[tuple[str, dict[str, Any]]] = [
    ("impression", {}),
    ("impression", {"item_id": "i9"}),
    ("impression", {"items": [f"i{n}" for n in range(100)]}),
    ("impression", {"items": ["i1"]}),
    ("impression", {"items": ["i1", "x" * 128, "ünïcode-1", "a.b:c@d/e+f=g-h_i"]}),
    ("login", {}),
    ("login", {"item_id": "i9"}),
    ("click", {"event_id": "e" * 128, "user_id": "u" * 128, "item_id": "i" * 128}),
    ("click", {"user_id": "anon:7f3a/x+y=z@site.example-1_2"}),
    ("click", {"user_id": "café", "item_id": "商品42"}),
    ("click", {"session_id": None, "recommendation_id": None, "context": None}),
    ("click", {"value": -3.5, "price": 0}),
    ("click", {"context": {}}),
    ("click", {"context": {"device": "ios", "width": 1170, "ratio": 2.5, "k" * 64: "p" * 256}}),
    ("click", {"context": {f"k{n}": n for n in range(32)}}),
    ("click", {"unknown": {"nested": [1, None, "x"]}, "_meta": None}),
    ("rate", {"value": 1}),
    ("rate", {"value": 5}),
    ("rate", {"value": 3.5}),
    ("consume", {"value": 0}),
    ("consume", {"value": 1}),
    ("consume", {"value": DROP}),
    ("buy", {"value": 0.001, "price": 0}),
    ("buy", {"value": DROP, "price": DROP}),
    ("basket", {"value": 0}),
    ("click", {"timestamp": MIN_TIMESTAMP_MS}),
    # Historical logs of any era since 1973 are events too.
    ("click", {"timestamp": 893_980_800_000}),
    ("click", {"timestamp": "1998-05-01T00:00:00Z"}),
    ("click", {"timestamp": MAX_TIMESTAMP_MS - 1}),
    ("click", {"timestamp": float(TS)}),
    ("click", {"timestamp": "2023-11-14T22:13:20Z"}),
    ("click", {"timestamp": "2023-11-15T00:13:20+02:00"}),
    ("click", {"timestamp": "2023-11-14T17:13:20.000-05:00"}),
]


@pytest.mark.parametrize(("event_type", "changes"), ACCEPTED)
def test_contract_accepts_edge_cases(event_type: str, changes: dict[str, Any]) -> None:
    raw = make(event_type, **changes)
    event = event_from_dict(raw)
    assert parse_message(as_json(raw)) == ([event], [])
    assert parse_message(event.to_json()) == ([event], [])


def test_iso_timestamps_in_any_offset_name_the_same_instant() -> None:
    forms = ["2023-11-14T22:13:20Z", "2023-11-15T00:13:20+02:00", "2023-11-14T17:13:20-05:00"]
    assert {event_from_dict(make("click", timestamp=form)).timestamp_ms for form in forms} == {TS}


def test_unknown_fields_are_kept_and_ignored() -> None:
    event = event_from_dict(make("click", campaign="spring", score=[1, 2]))
    assert event.extra == {"campaign": "spring", "score": [1, 2]}
    assert orjson.loads(event.to_json())["campaign"] == "spring"


def test_non_finite_numbers_never_get_in() -> None:
    # orjson refuses NaN, Infinity and overflowing exponents, so raw JSON cannot carry them...
    for literal in (b"1e999", b"-1e999", b"NaN", b"Infinity"):
        raw = b'{"event_id":"e1","type":"click","user_id":"u1","item_id":"i1","timestamp":%d,"value":%s}'
        events, rejections = parse_message(raw % (TS, literal))
        assert events == []
        assert rejections[0].reason.startswith("not valid JSON")
    # ...and decoded values from elsewhere are checked too.
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(InvalidInput, match="value must be finite"):
            event_from_dict(make("click", value=bad))
        with pytest.raises(InvalidInput, match="price must be finite"):
            event_from_dict(make("buy", price=bad))
        with pytest.raises(InvalidInput, match="timestamp must be finite"):
            event_from_dict(make("click", timestamp=bad))
        with pytest.raises(InvalidInput, match="must be finite"):
            event_from_dict(make("click", context={"x": bad}))


def test_non_object_messages_are_rejected() -> None:
    for raw in (b"42", b'"click"', b"null", b"true", b"[[]]"):
        events, rejections = parse_message(raw)
        assert events == []
        assert rejections[0].reason == "an event must be a JSON object"


def test_future_timestamps_need_now_and_a_limit() -> None:
    now, limit = TS, 300_000
    at_limit = make("click", timestamp=now + limit)
    past_limit = make("click", timestamp=now + limit + 1)
    assert event_from_dict(at_limit, now_ms=now, max_future_ms=limit).timestamp_ms == now + limit
    with pytest.raises(InvalidInput, match="timestamp lies in the future"):
        event_from_dict(past_limit, now_ms=now, max_future_ms=limit)
    assert parse_message(as_json(past_limit), now, limit)[1] == [
        Rejection("timestamp lies in the future")
    ]
    events, rejections = parse_message(as_json([at_limit, past_limit]), now, limit)
    assert len(events) == 1
    assert rejections == [Rejection("timestamp lies in the future", 1)]
    # Without both, or for events from the past, there is no limit.
    assert event_from_dict(past_limit).timestamp_ms == now + limit + 1
    assert event_from_dict(past_limit, now_ms=now).timestamp_ms == now + limit + 1
    assert event_from_dict(past_limit, max_future_ms=limit).timestamp_ms == now + limit + 1
    old = make("click", timestamp=MIN_TIMESTAMP_MS)
    assert event_from_dict(old, now_ms=now, max_future_ms=0).timestamp_ms == MIN_TIMESTAMP_MS


@FAST
@given(valid_events(), st.integers(min_value=0, max_value=10**7))
def test_future_limit_is_inclusive(case: tuple[dict[str, Any], int], limit: int) -> None:
    raw, ms = case
    assert event_from_dict(raw, now_ms=ms - limit, max_future_ms=limit).timestamp_ms == ms
    with pytest.raises(InvalidInput, match="in the future"):
        event_from_dict(raw, now_ms=ms - limit - 1, max_future_ms=limit)


# --- numbers beyond 64 bits -------------------------------------------------------------------

T0 = 1_767_225_600_000


@pytest.mark.parametrize("value", [10**400, -(10**30), 2**64])
def test_huge_integers_are_refused_not_crashed_on(value: int):
    with pytest.raises(InvalidInput, match="too large"):
        check_context({"n": value})
    with pytest.raises(InvalidInput):
        event_from_dict(
            {
                "event_id": "e",
                "type": "buy",
                "user_id": "u",
                "item_id": "i",
                "timestamp": T0,
                "value": value,
            }
        )
