"""The stored form of catalog items (pipeline.features.catalog.model): item hashes and the
latest version of each item in a batch."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.core.items import Item, item_from_dict
from pipeline.features.catalog.model import item_hash, latest_versions

FAST = settings(max_examples=150, deadline=None, database=None)


def test_latest_versions_keep_the_last_version_of_each_item() -> None:
    v1 = Item("a", title="first")
    v2 = Item("a", title="second", available=False)
    other = Item("b")
    v3 = Item("a", title="third")
    assert latest_versions([v1, other, v2]) == {"a": v2, "b": other}
    assert latest_versions([v1, v2, other, v3])["a"] is v3
    assert latest_versions([]) == {}


@FAST
@given(st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 99)), max_size=20))
def test_latest_versions_property(versions: list[tuple[str, int]]) -> None:
    items = [Item(item_id, price=float(version)) for item_id, version in versions]
    latest = latest_versions(items)
    assert set(latest) == {item_id for item_id, _ in versions}
    for item_id, item in latest.items():
        assert item is [candidate for candidate in items if candidate.item_id == item_id][-1]


def test_item_hash_of_a_full_item() -> None:
    item = item_from_dict(
        {
            "item_id": "sku-1",
            "categories": ["shoes", "sale"],
            "attributes": {"brand": "Acmé", "sizes": [40, 41.5], "new": True},
            "created_at": 1_700_000_000_000,
            "available": False,
            "price": 49.9,
            "title": "Trail shoe «v2»",
        }
    )
    fields = item_hash(item)
    assert fields == {
        "item_id": "sku-1",
        "categories": '["shoes","sale"]',
        "attributes": '{"brand":"Acmé","sizes":[40,41.5],"new":true}',
        "available": "0",
        "created_at": "1700000000000",
        "price": "49.9",
        "title": "Trail shoe «v2»",
    }
    assert all(isinstance(value, str) for value in fields.values())


def test_item_hash_of_a_minimal_item_omits_optional_fields() -> None:
    assert item_hash(item_from_dict({"item_id": "a"})) == {
        "item_id": "a",
        "categories": "[]",
        "attributes": "{}",
        "available": "1",
    }


def test_item_hash_prices_read_back_exactly() -> None:
    for price in (0, 10, 0.1, 19.99, 1e-7, 123456789.123):
        encoded = item_hash(item_from_dict({"item_id": "a", "price": price}))["price"]
        assert float(encoded) == float(price)


item_records = st.fixed_dictionaries(
    {"item_id": st.text("abcxyz019-_:", min_size=1, max_size=10)},
    optional={
        "categories": st.lists(st.sampled_from(["c1", "c2", "c3"]), max_size=3),
        "attributes": st.dictionaries(
            st.sampled_from(["color", "size", "tags"]),
            st.text(max_size=10)
            | st.integers(-(2**63), 2**63 - 1)
            | st.floats(allow_nan=False, allow_infinity=False)
            | st.booleans()
            | st.lists(st.text(max_size=5) | st.integers(-5, 5), max_size=3),
            max_size=3,
        ),
        "created_at": st.integers(946_684_800_000, 4_102_444_799_999),
        "available": st.booleans(),
        "price": st.floats(min_value=0, max_value=1e9),
        "title": st.text(max_size=512),
    },
)


@FAST
@given(item_records)
def test_item_hash_decodes_back_to_the_item(raw: dict[str, Any]) -> None:
    item = item_from_dict(raw)
    fields = item_hash(item)
    decoded: dict[str, Any] = {
        "item_id": fields["item_id"],
        "categories": orjson.loads(fields["categories"]),
        "attributes": orjson.loads(fields["attributes"]),
        "available": {"1": True, "0": False}[fields["available"]],
    }
    if "created_at" in fields:
        decoded["created_at"] = int(fields["created_at"])
    if "price" in fields:
        decoded["price"] = float(fields["price"])
    if "title" in fields:
        decoded["title"] = fields["title"]
    assert item_from_dict(decoded) == item
