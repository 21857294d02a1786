"""Pure helpers of the store (offset fences), the catalog (item hashes) and dead letters."""

from __future__ import annotations

import base64
import time
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.catalog import item_hash, latest_versions, parse_categories
from pipeline.events import Item, Rejection, item_from_dict
from pipeline.store import Position, batch_high_marks, fresh_indexes
from pipeline.streaming import RawMessage, dead_letter_record

FAST = settings(max_examples=150, deadline=None, database=None)

# --- offset fences -------------------------------------------------------------------------

partitions = st.tuples(st.sampled_from(["events.clicks", "events.conversions"]), st.integers(0, 3))


@st.composite
def batches(draw: st.DrawFn) -> list[Position]:
    """Messages as one consumer sees them: offsets increase within each partition."""
    order = draw(st.lists(partitions, max_size=30))
    next_offset = {part: draw(st.integers(0, 10**9)) for part in set(order)}
    positions = []
    for part in order:
        offset = next_offset[part]
        positions.append(Position(part[0], part[1], offset))
        next_offset[part] = offset + draw(st.integers(1, 5))
    return positions


@FAST
@given(batches(), st.data())
def test_fences_of_a_prefix_leave_exactly_the_suffix(
    positions: list[Position], data: st.DataObject
) -> None:
    """A crash after applying the first k messages: the replay applies the rest, once."""
    applied = data.draw(st.integers(0, len(positions)))
    fences = batch_high_marks(positions[:applied])
    assert fresh_indexes(positions, fences) == list(range(applied, len(positions)))


@FAST
@given(batches())
def test_high_marks_are_the_last_offset_per_partition(positions: list[Position]) -> None:
    marks = batch_high_marks(positions)
    assert set(marks) == {(pos.topic, pos.partition) for pos in positions}
    for pos in positions:
        assert marks[(pos.topic, pos.partition)] >= pos.offset
    for (topic, partition), mark in marks.items():
        assert mark == max(
            pos.offset for pos in positions if (pos.topic, pos.partition) == (topic, partition)
        )
    # A full replay is all fenced off; no fences at all leaves everything fresh.
    assert fresh_indexes(positions, marks) == []
    assert fresh_indexes(positions, {}) == list(range(len(positions)))


@FAST
@given(batches(), batches())
def test_fences_only_move_forward_across_batches(
    first: list[Position], second: list[Position]
) -> None:
    """Fences of an earlier batch never hide messages past them in a later one."""
    fences = batch_high_marks(first)
    fresh = fresh_indexes(second, fences)
    for index, pos in enumerate(second):
        assert (index in fresh) == (pos.offset > fences.get((pos.topic, pos.partition), -1))


def test_fence_examples() -> None:
    batch = [
        Position("t", 0, 10),
        Position("t", 1, 5),
        Position("t", 0, 11),
        Position("u", 0, 3),
        Position("t", 1, 6),
    ]
    assert batch_high_marks(batch) == {("t", 0): 11, ("t", 1): 6, ("u", 0): 3}
    assert fresh_indexes(batch, {("t", 0): 10, ("t", 1): 6}) == [2, 3]
    assert fresh_indexes(batch, {("t", 0): 9}) == [0, 1, 2, 3, 4]
    # Offset 0 is a real offset: a missing fence reads as -1.
    assert fresh_indexes([Position("t", 0, 0)], {}) == [0]
    assert fresh_indexes([Position("t", 0, 0)], {("t", 0): 0}) == []
    assert batch_high_marks([]) == {}


# --- catalog -------------------------------------------------------------------------------


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


# --- dead letters --------------------------------------------------------------------------

POSITION = Position("events.clicks", 2, 417)


def dead_letter(value: bytes | None, rejection: Rejection) -> dict[str, Any]:
    record = orjson.loads(
        dead_letter_record(RawMessage(POSITION, b"user-1", value), rejection, "trending")
    )
    assert isinstance(record, dict)
    return record


def test_dead_letter_keeps_text_reason_and_position() -> None:
    before = int(time.time() * 1000)
    record = dead_letter(b'{"type": "click"}', Rejection("event_id is required"))
    assert record["value"] == '{"type": "click"}'
    assert "value_base64" not in record
    assert record["reason"] == "event_id is required"
    assert record["index"] is None
    assert record["agent"] == "trending"
    assert (record["topic"], record["partition"], record["offset"]) == ("events.clicks", 2, 417)
    assert before <= record["rejected_at"] <= int(time.time() * 1000) + 1


def test_dead_letter_of_a_batch_element_names_its_index() -> None:
    record = dead_letter(b'[{"a": 1}, {"b": 2}]', Rejection("event_id is required", 1))
    assert record["index"] == 1
    assert record["value"] == '[{"a": 1}, {"b": 2}]'


def test_dead_letter_of_non_utf8_bytes_is_base64() -> None:
    raw = b"\xff\xfe\x00garbage\x80"
    record = dead_letter(raw, Rejection("not valid JSON: ..."))
    assert "value" not in record
    assert base64.b64decode(record["value_base64"]) == raw
    assert record["reason"] == "not valid JSON: ..."


def test_dead_letter_of_an_empty_message() -> None:
    record = dead_letter(None, Rejection("empty message (no value)"))
    assert record["value"] is None
    assert "value_base64" not in record


@pytest.mark.parametrize("raw", [b"", "héllo ✓".encode(), b"\x00\x01"])
def test_dead_letter_of_valid_utf8_is_text(raw: bytes) -> None:
    assert dead_letter(raw, Rejection("r"))["value"] == raw.decode("utf-8")


@FAST
@given(st.binary(max_size=200), st.text(min_size=1, max_size=80), st.none() | st.integers(0, 99))
def test_dead_letter_always_carries_the_original_bytes(
    raw: bytes, reason: str, index: int | None
) -> None:
    record = dead_letter(raw, Rejection(reason, index))
    if "value" in record:
        assert record["value"].encode("utf-8") == raw
    else:
        assert base64.b64decode(record["value_base64"], validate=True) == raw
    assert record["reason"] == reason
    assert record["index"] == index


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
    assert parse_categories(stored) == expected
