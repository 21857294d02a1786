"""The dead-letter contract (pipeline.core.deadletters): one bounded record per message, whose
original can be read back when it was small enough to keep whole."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.core.deadletters import (
    DEAD_LETTER_VALUE_BYTES,
    KAFKA_DEFAULT_MAX_REQUEST,
    MAX_DEAD_LETTER_VALUE_BYTES,
    MAX_KEY_BYTES,
    MAX_LISTED_REJECTIONS,
    MAX_NAME_CHARS,
    MAX_REASON_CHARS,
    build_dead_letter,
    dead_letter_bound,
    dead_letter_key,
    original_of,
)
from pipeline.core.events import Rejection

FAST = settings(max_examples=150, deadline=None, database=None)


def letter(
    value: bytes | None,
    rejections: list[Rejection],
    limit: int = DEAD_LETTER_VALUE_BYTES,
    key: bytes | None = b"u1",
    agent: str = "trending",
    topic: str = "events.clicks",
) -> tuple[bytes, dict[str, Any]]:
    raw = build_dead_letter(value, key, rejections, agent, topic, 3, 99, 1_700_000_000_000, limit)
    record = orjson.loads(raw)
    assert isinstance(record, dict)
    return raw, record


def test_a_small_message_is_kept_whole_with_its_size_and_hash() -> None:
    value = b'{"type": "click"}'
    _, record = letter(value, [Rejection("event_id is required")])
    assert record["value"] == value.decode()
    assert record["size"] == len(value)
    assert record["sha256"] == hashlib.sha256(value).hexdigest()
    assert record["reason"] == "event_id is required" and record["index"] is None
    assert record["reasons"] == [{"index": None, "reason": "event_id is required"}]
    assert record["rejected"] == 1
    assert (record["topic"], record["partition"], record["offset"]) == ("events.clicks", 3, 99)
    assert record["agent"] == "trending" and record["rejected_at"] == 1_700_000_000_000
    assert original_of(record).value == value


def test_non_utf8_bytes_are_kept_as_base64() -> None:
    value = b"\xff\xfe\x00garbage\x80"
    _, record = letter(value, [Rejection("not valid JSON")])
    assert "value" not in record
    assert base64.b64decode(record["value_base64"]) == value
    assert original_of(record).value == value


def test_a_message_without_value() -> None:
    _, record = letter(None, [Rejection("empty message (no value)")])
    assert record["value"] is None and "size" not in record
    assert original_of(record).value is None
    assert "no value" in original_of(record).missing


def test_the_issue_message_of_800000_0xff_bytes_keeps_a_prefix_size_and_hash() -> None:
    value = b"\xff" * 800_000
    raw, record = letter(value, [Rejection("not valid JSON: unexpected character")])
    # The old format kept it whole in base64: 1.07 MB, more than a broker takes.
    assert len(raw) < 8 * 1024
    assert base64.b64decode(record["value_prefix_base64"]) == value[:DEAD_LETTER_VALUE_BYTES]
    assert "value" not in record and "value_base64" not in record
    assert record["size"] == 800_000
    assert record["sha256"] == hashlib.sha256(value).hexdigest()
    found = original_of(record)
    assert found.value is None and "prefix" in found.missing


def test_a_text_prefix_never_splits_a_character() -> None:
    value = ("é" * 5000).encode()  # two bytes each: the limit falls inside none or one
    _, record = letter(value, [Rejection("r")], limit=4095)
    assert record["value_prefix"] == "é" * 2047


def test_one_letter_lists_the_first_100_rejections_and_counts_all() -> None:
    rejections = [Rejection(f"bad {n}", n) for n in range(10_000)]
    raw, record = letter(b"[" + b"1," * 9_999 + b"1]", rejections)
    assert record["rejected"] == 10_000
    assert [r["index"] for r in record["reasons"]] == list(range(MAX_LISTED_REJECTIONS))
    assert record["reason"] == "bad 0" and record["index"] == 0
    assert len(raw) <= dead_letter_bound(DEAD_LETTER_VALUE_BYTES)


def test_reasons_and_names_are_cut_and_cleaned() -> None:
    reason = "x\n\x00" + "\ud800" + "y" * 1000
    _, record = letter(b"{}", [Rejection(reason)], agent="a" * 1000, topic="t" * 1000)
    assert len(record["reason"]) == MAX_REASON_CHARS
    assert record["reason"].startswith("x???y")
    assert len(record["agent"]) == len(record["topic"]) == MAX_NAME_CHARS


def test_a_huge_key_is_replaced_by_its_hash_and_the_letter_says_so() -> None:
    key = b"k" * (MAX_KEY_BYTES + 1)
    assert dead_letter_key(key) == b"sha256:" + hashlib.sha256(key).hexdigest().encode()
    assert dead_letter_key(b"k" * MAX_KEY_BYTES) == b"k" * MAX_KEY_BYTES
    assert dead_letter_key(None) is None
    _, record = letter(b"{}", [Rejection("r")], key=key)
    assert record["key_size"] == MAX_KEY_BYTES + 1
    assert original_of(record).value is None


def test_a_letter_needs_a_rejection() -> None:
    with pytest.raises(ValueError):
        build_dead_letter(b"{}", None, [], "a", "t", 0, 0, 0)


def test_the_largest_possible_letter_is_far_below_what_kafka_accepts() -> None:
    # Worst case of every field at once: control characters in the value (6 JSON bytes
    # each), 4-byte characters and quotes in every reason and name, the most rejections.
    limit = MAX_DEAD_LETTER_VALUE_BYTES
    worst_reason = ("\U0001f600" + '"') * MAX_REASON_CHARS
    rejections = [Rejection(worst_reason, 10**18) for _ in range(MAX_LISTED_REJECTIONS + 5)]
    for value in (b"\x01" * limit, b"\x01" * (limit + 1), b"\xff" * limit):
        raw, _ = letter(
            value,
            rejections,
            limit=limit,
            key=b"k" * 5000,
            agent="\U0001f600" * 999,
            topic='"' * 999,
        )
        assert len(raw) <= dead_letter_bound(limit)
    assert dead_letter_bound(limit) + MAX_KEY_BYTES + 1024 < KAFKA_DEFAULT_MAX_REQUEST
    assert dead_letter_bound(DEAD_LETTER_VALUE_BYTES) < 120_000


@FAST
@given(
    st.binary(max_size=600) | st.text(max_size=300).map(str.encode),
    st.lists(
        st.tuples(st.text(max_size=300), st.none() | st.integers(0, 10**6)),
        min_size=1,
        max_size=130,
    ),
    st.integers(64, 400),
)
def test_every_letter_is_bounded_and_holds_the_original_when_small(
    value: bytes, reasons: list[tuple[str, int | None]], limit: int
) -> None:
    rejections = [Rejection(reason, index) for reason, index in reasons]
    raw, record = letter(value, rejections, limit=limit)
    assert len(raw) <= dead_letter_bound(limit)
    assert record["rejected"] == len(rejections)
    assert len(record["reasons"]) == min(len(rejections), MAX_LISTED_REJECTIONS)
    assert record["sha256"] == hashlib.sha256(value).hexdigest()
    found = original_of(record)
    assert found.value == (value if len(value) <= limit else None)
