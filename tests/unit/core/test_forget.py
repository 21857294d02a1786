"""The ``forget`` event (docs/privacy.md): its contract, and how a batch's forgets split it."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.core.events import (
    FORGET,
    ITEMLESS_TYPES,
    NOT_IN_FORGET,
    Event,
    event_from_dict,
    parse_message,
    split_forgets,
)
from pipeline.core.ids import InvalidInput
from tests.unit.core.helpers import TS, make


def test_a_forget_names_only_the_user() -> None:
    event = event_from_dict(make(FORGET, user_id="shop:42/anna"))
    assert FORGET in ITEMLESS_TYPES
    assert (event.event_type, event.user_id, event.timestamp_ms) == (FORGET, "shop:42/anna", TS)
    assert event.item_id is None and event.items == () and event.value is None
    # The wire form is the four fields, and parses back to the same event.
    assert event.to_dict() == {
        "event_id": "e1",
        "type": "forget",
        "user_id": "shop:42/anna",
        "timestamp": TS,
    }
    assert parse_message(event.to_json()) == ([event], [])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("item_id", "i1"),
        ("items", ["i1"]),
        ("value", 1),
        ("price", 0),
        ("previous_user_id", "anon-1"),
    ],
)
def test_a_forget_carrying_an_interaction_field_is_refused(field: str, value: Any) -> None:
    assert field in NOT_IN_FORGET
    with pytest.raises(InvalidInput, match=f"a forget names only the user; remove {field}"):
        event_from_dict(make(FORGET, **{field: value}))
    if field != "items":  # a null items is refused for every type
        # Null is the same as absent.
        assert event_from_dict(make(FORGET, **{field: None})).event_type == FORGET


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"user_id": "a b"}, "user_id may contain only"),
        ({"user_id": "u" * 129}, "user_id must be 1-128 characters"),
        ({"timestamp": 1_700_000_000}, "timestamp must lie between 1973 and 2100"),
    ],
)
def test_a_forget_follows_the_common_rules(changes: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason):
        event_from_dict(make(FORGET, **changes))


def ev(kind: str, user: str, t: int, item: str | None = "i1") -> Event:
    raw: dict[str, Any] = {"event_id": f"{kind}-{user}-{t}", "type": kind, "user_id": user}
    raw["timestamp"] = TS + t
    if kind != FORGET and item is not None:
        raw["item_id"] = item
    return event_from_dict(raw)


def test_a_batch_without_forgets_is_returned_as_it_is() -> None:
    batch = [ev("click", "u1", 2), ev("buy", "u2", 1)]
    assert split_forgets(batch) == (batch, set())


def test_events_before_the_last_forget_of_their_user_are_dropped() -> None:
    before = ev("click", "u1", 1)
    other = ev("click", "u2", 2)
    after = ev("buy", "u1", 9)
    batch = [after, ev(FORGET, "u1", 5), other, before, ev(FORGET, "u1", 3)]
    kept, forgotten = split_forgets(batch)
    # Timestamp order decides, not batch order; survivors keep their batch order.
    assert kept == [after, other]
    assert forgotten == {"u1"}


def test_ties_with_the_forget_keep_the_batch_order() -> None:
    first = ev("click", "u1", 5, "a")
    last = ev("click", "u1", 5, "b")
    kept, forgotten = split_forgets([first, ev(FORGET, "u1", 5), last])
    assert kept == [last]
    assert forgotten == {"u1"}
