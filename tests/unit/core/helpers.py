"""Shared pieces of the contract tests (events, items, feedback): hypothesis strategies for
ids, JSON values and timestamps, and a builder of valid raw events of each type."""

from __future__ import annotations

import string
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from pipeline.core.events import MAX_TIMESTAMP_MS, MIN_TIMESTAMP_MS
from pipeline.core.ids import MAX_ID_LENGTH, valid_id

KNOWN_FIELDS = (
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
)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# --- strategies ----------------------------------------------------------------------------

# The ID_PATTERN alphabet: ASCII word characters and . : @ / + = -, plus Unicode letters
# and digits (``\w``).
id_chars = st.sampled_from(string.ascii_letters + string.digits + "_.:@/+=-") | st.characters(
    categories=("L", "Nd")
)
ids = st.text(id_chars, min_size=1, max_size=MAX_ID_LENGTH).filter(valid_id)
# Short ids keep lists of them cheap.
short_ids = st.text(id_chars, min_size=1, max_size=12).filter(valid_id)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)

epoch_ms = st.integers(min_value=MIN_TIMESTAMP_MS, max_value=MAX_TIMESTAMP_MS - 1)
# Whole-minute offsets: what fromisoformat reads back exactly.
offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


def iso(ms: int, tz: timezone, sep: str = "T") -> str:
    return (EPOCH + timedelta(milliseconds=ms)).astimezone(tz).isoformat(sep=sep)


@st.composite
def timestamps(draw: st.DrawFn) -> tuple[Any, int]:
    """(wire value, epoch milliseconds it stands for)."""
    ms = draw(epoch_ms)
    form = draw(st.sampled_from(["int", "float", "iso", "iso_z", "iso_space"]))
    if form == "int":
        return ms, ms
    if form == "float":
        return float(ms), ms
    if form == "iso_z":
        return iso(ms, UTC).replace("+00:00", "Z"), ms
    return iso(ms, draw(offsets), " " if form == "iso_space" else "T"), ms


# --- valid raw events of each type -----------------------------------------------------------

TS = 1_700_000_000_000
DROP = object()
BASE: dict[str, dict[str, Any]] = {
    "click": {"item_id": "i1"},
    "consume": {"item_id": "i1", "value": 0.5},
    "buy": {"item_id": "i1", "value": 2, "price": 9.99},
    "basket": {"item_id": "i1"},
    "rate": {"item_id": "i1", "value": 4},
    "impression": {"items": ["i1", "i2"]},
    "blacklist": {"item_id": "i1"},
    "login": {"previous_user_id": "anon-1"},
    "forget": {},
}


def make(event_type: str, **changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "event_id": "e1",
        "type": event_type,
        "user_id": "u1",
        "timestamp": TS,
        **BASE[event_type],
    }
    for name, value in changes.items():
        if value is DROP:
            raw.pop(name, None)
        else:
            raw[name] = value
    return raw
