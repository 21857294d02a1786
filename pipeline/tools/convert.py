"""Event logs from CSV tables: a ratings export (MovieLens's ``ratings.csv``), a shop's event
table, any interaction log with a header row, converted to the event contract so that
``pipeline evaluate`` replays it and ``pipeline produce`` publishes it.

Each row becomes one event: its user, item and time from named columns; its type either
the same for every row or read from a column (through a mapping of the table's names to
event types); an optional value column (a rating, a quantity, a fraction consumed). The
event id is a prefix and the row's line number, so one table converted twice gives the
same ids (a log published twice is deduplicated, not counted twice). A row that does not
make a valid event (a missing cell, a time that is no time, a type not mapped, a rating
outside 1-5) is reported with its line and reason, and not written.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.core.events import EVENT_TYPES, ITEMLESS_TYPES, event_from_dict
from pipeline.core.ids import InvalidInput

# How a time column counts: epoch milliseconds, epoch seconds (whole or not), or ISO-8601
# text with a UTC offset.
TIME_UNITS = ("ms", "s", "iso")
# The event types a row can make: those of a user and an item (a login names two users, a
# forget no item, an impression a list).
ROW_TYPES = EVENT_TYPES - ITEMLESS_TYPES
# A number as tables write it: digits, a point, an exponent (not Python's underscores).
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


@dataclass(frozen=True)
class CsvMapping:
    """Which columns make an event, and how. Exactly one of ``event_type`` (every row)
    and ``type_column`` (per row: its value, renamed by ``type_map`` when listed there,
    must be an event type) is given."""

    user: str = "user_id"
    item: str = "item_id"
    time: str = "timestamp"
    time_unit: str = "ms"
    event_type: str | None = None
    type_column: str | None = None
    type_map: Mapping[str, str] = field(default_factory=dict)
    value: str | None = None
    id_prefix: str = "row-"
    # (lowest, highest) rating of the table's scale, mapped linearly onto the contract's 1-5
    # (MovieLens's newer tables rate 0.5-5 in half stars); None: the table rates 1-5.
    rating_scale: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if (self.event_type is None) == (self.type_column is None):
            raise ValueError("give either an event type for every row or a type column")
        if self.time_unit not in TIME_UNITS:
            raise ValueError(f"time unit must be one of {', '.join(TIME_UNITS)}")
        named = {t for t in (self.event_type, *self.type_map.values()) if t is not None}
        if named - ROW_TYPES:
            raise ValueError(
                f"a row makes no {', '.join(sorted(named - ROW_TYPES))} event;"
                f" types: {', '.join(sorted(ROW_TYPES))}"
            )
        if self.rating_scale is not None and not self.rating_scale[0] < self.rating_scale[1]:
            raise ValueError("a rating scale is LOWEST HIGHEST, the lowest below the highest")

    def columns(self) -> list[str]:
        """The columns every row needs."""
        named = [self.user, self.item, self.time, self.type_column, self.value]
        return [column for column in named if column is not None]


def parse_type_map(pairs: Iterable[str]) -> dict[str, str]:
    """``["view=click", "transaction=buy"]`` as a mapping (ValueError names a bad pair)."""
    mapping = {}
    for pair in pairs:
        name, sep, event_type = pair.partition("=")
        if not sep or not name or not event_type:
            raise ValueError(f"a type mapping is NAME=EVENT_TYPE, got {pair!r}")
        mapping[name] = event_type
    return mapping


def convert_rows(
    reader: csv.DictReader[str], mapping: CsvMapping
) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """For each row of ``reader`` (its header read), the line it ends on (a quoted field may
    span lines; blank lines count) and either the event (a dict of the event contract,
    checked by ``event_from_dict``) or the reason it makes none. A malformed table
    (``csv.Error``) or text that is not UTF-8 (``UnicodeDecodeError``) raises."""
    width = len(reader.fieldnames or ())
    for row in reader:
        line = reader.line_num
        try:
            extra = row.get(None)
            if extra:  # fields past the header's (an unquoted separator in a cell?)
                raise InvalidInput(f"{width + len(extra)} fields, the header has {width}")
            yield line, _event(row, line, mapping)
        except InvalidInput as error:
            yield line, str(error)


def _event(row: Mapping[str, str | None], line: int, mapping: CsvMapping) -> dict[str, Any]:
    for column in mapping.columns():
        if not (row.get(column) or "").strip():
            raise InvalidInput(f"column {column!r} is empty or missing")
    event_type = mapping.event_type
    if event_type is None:
        assert mapping.type_column is not None  # one of the two, checked by CsvMapping
        named = str(row[mapping.type_column]).strip()
        event_type = mapping.type_map.get(named, named)
        if event_type not in EVENT_TYPES:
            raise InvalidInput(f"type {named!r} is not mapped to an event type (--type-map)")
    event: dict[str, Any] = {
        "event_id": f"{mapping.id_prefix}{line}",
        "type": event_type,
        "user_id": str(row[mapping.user]).strip(),
        "item_id": str(row[mapping.item]).strip(),
        "timestamp": _time(str(row[mapping.time]).strip(), mapping.time_unit, mapping.time),
    }
    if mapping.value is not None:
        value = _number(str(row[mapping.value]).strip(), mapping.value)
        if event_type == "rate" and mapping.rating_scale is not None:
            low, high = mapping.rating_scale
            if not low <= value <= high:
                raise InvalidInput(f"rating {value} lies outside the scale {low:g}-{high:g}")
            value = round(1.0 + 4.0 * (value - low) / (high - low), 6)
        event["value"] = value
    event_from_dict(event)
    return event


def _time(text: str, unit: str, column: str) -> int | str:
    if unit == "iso":
        return text
    number = _number(text, column)
    return round(number * 1000) if unit == "s" else round(number)


def _number(text: str, column: str) -> float | int:
    if not _NUMBER.fullmatch(text):
        raise InvalidInput(f"column {column!r} is not a number: {text[:40]!r}")
    number = float(text)
    if not math.isfinite(number):
        raise InvalidInput(f"column {column!r} is not a finite number")
    return int(number) if number.is_integer() else number
