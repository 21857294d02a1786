"""Dead letters of the batch loop (pipeline.stream.batch): one bounded record per rejected
message, with where it came from, why, and the original bytes when they are small."""

from __future__ import annotations

import base64
import time
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.core.deadletters import DEAD_LETTER_VALUE_BYTES, dead_letter_bound
from pipeline.core.events import Rejection
from pipeline.stream.batch import RawMessage, dead_letter_record
from pipeline.stream.fence import Position

FAST = settings(max_examples=150, deadline=None, database=None)

POSITION = Position("events.clicks", 2, 417)


def dead_letter(
    value: bytes | None, *rejections: Rejection, limit: int = DEAD_LETTER_VALUE_BYTES
) -> dict[str, Any]:
    raw = dead_letter_record(RawMessage(POSITION, b"user-1", value), rejections, "trending", limit)
    assert len(raw) <= dead_letter_bound(limit)
    record = orjson.loads(raw)
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


def test_one_dead_letter_names_every_rejected_element() -> None:
    record = dead_letter(
        b'[{"a": 1}, {"b": 2}]',
        Rejection("event_id is required", 0),
        Rejection("type is required", 1),
    )
    assert record["index"] == 0
    assert record["reasons"] == [
        {"index": 0, "reason": "event_id is required"},
        {"index": 1, "reason": "type is required"},
    ]
    assert record["rejected"] == 2
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


def test_a_large_message_keeps_only_a_prefix_its_size_and_hash() -> None:
    record = dead_letter(b"\xff" * 800_000, Rejection("not valid JSON"), limit=1000)
    assert base64.b64decode(record["value_prefix_base64"]) == b"\xff" * 1000
    assert record["size"] == 800_000 and len(record["sha256"]) == 64


@FAST
@given(
    st.binary(max_size=200),
    st.lists(
        st.tuples(st.text(min_size=1, max_size=80), st.none() | st.integers(0, 99)), min_size=1
    ),
)
def test_dead_letter_carries_small_originals_whole(
    raw: bytes, reasons: list[tuple[str, int | None]]
) -> None:
    record = dead_letter(raw, *(Rejection(reason, index) for reason, index in reasons))
    if "value" in record:
        assert record["value"].encode("utf-8") == raw
    else:
        assert base64.b64decode(record["value_base64"], validate=True) == raw
    assert record["index"] == reasons[0][1]
    assert record["rejected"] == len(reasons)
