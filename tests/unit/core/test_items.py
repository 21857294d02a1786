"""The item (catalog) contract: valid records parse and round-trip, every rule rejects what
breaks it with a reason, parsing never raises; stored catalog fields read back tolerantly.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.core.events import Rejection, parse_timestamp
from pipeline.core.ids import InvalidInput
from pipeline.core.items import (
    Item,
    item_from_dict,
    parse_item_message,
    stored_attributes,
    stored_categories,
)
from tests.unit.core.helpers import TS, json_scalars, json_values, short_ids, timestamps

FUZZ = settings(max_examples=200, deadline=None, database=None)


def test_item_defaults() -> None:
    item = item_from_dict({"item_id": "sku-1"})
    assert item == Item(item_id="sku-1")
    assert item.categories == ()
    assert item.attributes == {}
    assert item.created_at_ms is None
    assert item.available is True
    assert item.price is None
    assert item.title is None


def test_item_with_every_field() -> None:
    raw = {
        "item_id": "sku-1",
        "categories": ["shoes", "sale"],
        "attributes": {"brand": "acme", "sizes": [40, 41.5, "XL"], "new": True},
        "created_at": "2024-03-01T10:00:00+01:00",
        "available": False,
        "price": 49,
        "title": "Trail shoe {v2}",
        "ignored": 1,
    }
    item = item_from_dict(raw)
    assert item.categories == ("shoes", "sale")
    assert item.attributes == {"brand": "acme", "sizes": [40, 41.5, "XL"], "new": True}
    assert item.created_at_ms == parse_timestamp("2024-03-01T09:00:00Z")
    assert item.available is False
    assert item.price == 49.0
    assert item.title == "Trail shoe {v2}"
    assert item_from_dict(item.to_dict()) == item
    assert parse_item_message(orjson.dumps(item.to_dict())) == (item, None)


@pytest.mark.parametrize(
    ("created_at", "expected"),
    [
        (TS, TS),
        (float(TS), TS),
        ("2023-11-14T22:13:20Z", TS),
        ("2023-11-14T23:13:20+01:00", TS),
        (None, None),
    ],
)
def test_item_created_at(created_at: Any, expected: int | None) -> None:
    assert item_from_dict({"item_id": "a", "created_at": created_at}).created_at_ms == expected


ITEM_REJECTED: list[tuple[Any, str]] = [
    ([], "an item must be a JSON object"),
    ("sku-1", "an item must be a JSON object"),
    ({}, "item_id is required"),
    ({"item_id": "a b"}, "item_id may contain only"),
    ({"item_id": "x" * 129}, "item_id must be 1-128 characters"),
    ({"item_id": 5}, "item_id must be a string"),
    ({"item_id": "a", "categories": "shoes"}, "categories must be a list"),
    ({"item_id": "a", "categories": None}, "categories must be a list"),
    ({"item_id": "a", "categories": {"shoes": 1}}, "categories must be a list"),
    ({"item_id": "a", "categories": [f"c{n}" for n in range(33)]}, "categories must be a list"),
    ({"item_id": "a", "categories": ["ok", "bad cat"]}, "categories[] may contain only"),
    ({"item_id": "a", "categories": ["{c}"]}, "categories[] may contain only"),
    ({"item_id": "a", "categories": [7]}, "categories[] must be a string"),
    ({"item_id": "a", "attributes": []}, "attributes must be an object"),
    ({"item_id": "a", "attributes": {f"k{n}": n for n in range(65)}}, "attributes must be"),
    ({"item_id": "a", "attributes": {"bad name": 1}}, "attribute name may contain only"),
    ({"item_id": "a", "attributes": {"k": None}}, "attributes['k'] must be a number"),
    ({"item_id": "a", "attributes": {"k": {"x": 1}}}, "attributes['k'] must be a number"),
    ({"item_id": "a", "attributes": {"k": [[1]]}}, "attributes['k'] must be a number"),
    ({"item_id": "a", "attributes": {"k": "v" * 257}}, "attributes['k'] longer than 256"),
    ({"item_id": "a", "available": "yes"}, "available must be true or false"),
    ({"item_id": "a", "available": 1}, "available must be true or false"),
    ({"item_id": "a", "available": 0}, "available must be true or false"),
    ({"item_id": "a", "available": None}, "available must be true or false"),
    ({"item_id": "a", "price": -1}, "price must not be negative"),
    ({"item_id": "a", "price": True}, "price must be a number"),
    ({"item_id": "a", "price": "10"}, "price must be a number"),
    ({"item_id": "a", "title": 5}, "title must be a string"),
    ({"item_id": "a", "title": "t" * 513}, "title must be a string of at most 512"),
    ({"item_id": "a", "description": ["d"]}, "description must be a string"),
    ({"item_id": "a", "description": "d" * 8193}, "description must be a string of at most 8192"),
    ({"item_id": "a", "created_at": "2024-03-01T10:00:00"}, "created_at needs a UTC offset"),
    ({"item_id": "a", "created_at": 1_700_000_000}, "created_at must lie between 1973"),
    ({"item_id": "a", "created_at": True}, "created_at must be a number"),
    ({"item_id": "a", "created_at": "tomorrow"}, "created_at is not ISO-8601"),
]


@pytest.mark.parametrize(("raw", "reason"), ITEM_REJECTED)
def test_item_rules_reject_with_reason(raw: Any, reason: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        item_from_dict(raw)
    assert str(caught.value).startswith(reason)
    assert parse_item_message(orjson.dumps(raw)) == (None, Rejection(str(caught.value)))


def test_item_title_and_price_boundaries() -> None:
    item = item_from_dict({"item_id": "a", "title": "t" * 512, "price": 0})
    assert item.title == "t" * 512
    long = item_from_dict({"item_id": "a", "description": "d" * 8192})
    assert long.description == "d" * 8192
    assert long.to_dict()["description"] == "d" * 8192
    assert "description" not in item.to_dict()
    assert item.price == 0.0


def check_item_outcome(outcome: tuple[Item | None, Rejection | None]) -> None:
    item, rejection = outcome
    assert (item is None) != (rejection is None)
    if rejection is not None:
        assert rejection.reason.strip()
    else:
        assert isinstance(item, Item)


item_like = st.fixed_dictionaries(
    {},
    optional={
        "item_id": short_ids | json_values,
        "categories": st.lists(short_ids | json_scalars, max_size=3) | json_values,
        "attributes": st.dictionaries(short_ids | st.text(max_size=4), json_values, max_size=3)
        | json_values,
        "created_at": timestamps().map(lambda pair: pair[0]) | json_values,
        "available": st.booleans() | json_values,
        "price": json_values,
        "title": json_values,
    },
)


@FUZZ
@given(st.none() | st.binary() | st.text())
def test_parse_item_message_never_raises_on_bytes(raw: bytes | str | None) -> None:
    check_item_outcome(parse_item_message(raw))


@FUZZ
@given(json_values | item_like)
def test_parse_item_message_never_raises_on_json(value: Any) -> None:
    check_item_outcome(parse_item_message(orjson.dumps(value)))


# --- stored fields (the catalog hash) -------------------------------------------------------


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        (None, []),
        (b"", []),
        (b'["shoes", "hats"]', ["shoes", "hats"]),
        (b"not json", []),
        (b'{"a": 1}', []),
        (b'["ok", "has space", 3, "{x}"]', ["ok"]),
    ],
)
def test_catalog_categories_read_from_redis_are_tolerant(stored, expected) -> None:
    """Others may write the catalog hashes: malformed fields must not stop an agent."""
    assert stored_categories(stored) == expected


def test_catalog_fields_parse_and_tolerate_garbage() -> None:
    categories = orjson.dumps(["a"])
    attributes = orjson.dumps({"color": "red"})
    assert (stored_categories(categories), stored_attributes(attributes)) == (
        ["a"],
        {"color": "red"},
    )
    assert (stored_categories(None), stored_attributes(None)) == ([], {})
    assert (stored_categories(b"not json"), stored_attributes(b"[1]")) == ([], {})
    assert (stored_categories(b'{"a": 1}'), stored_attributes(b'"x"')) == ([], {})
