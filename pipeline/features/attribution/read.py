"""Reading attribution: a scenario's counts and rates over a window, and the reader's own
count of the items it served."""

from __future__ import annotations

import asyncio
import re
from collections import defaultdict
from typing import Any

from pipeline.core.ids import InvalidInput, decode_id
from pipeline.core.keys import Keys
from pipeline.features.attribution.model import (
    ALL_STAGES,
    CLICKS,
    CONVERSIONS,
    DAY_MS,
    HOUR_MS,
    IMPRESSIONS,
    SERVED,
    rates,
    stat_field,
)
from pipeline.store.base import Reads, Store, Writes

_WINDOW = re.compile(r"^(?P<count>[1-9]\d{0,3})(?P<unit>[hd])$")
# Items listed in a scenario's statistics.
TOP_ITEMS = 20


def window_hours(text: str, retention_days: int) -> int:
    """``6h`` or ``7d`` as hours; :class:`InvalidInput` beyond what is kept."""
    match = _WINDOW.match(text)
    if match is None:
        raise InvalidInput("window is a number of hours or days, such as 6h, 1d or 7d")
    hours = int(match["count"]) * (24 if match["unit"] == "d" else 1)
    if hours > retention_days * 24:
        raise InvalidInput(f"window is at most {retention_days}d (setting stats_retention_days)")
    return hours


async def scenario_stats(
    store: Store, keys: Keys, scenario: str, hours: int, now_ms: int
) -> dict[str, Any]:
    """Counts and rates of ``scenario`` over the last ``hours``, in total, per stage, and for
    the most clicked items. Counts are kept per clock hour: the window reads every hour
    that overlaps it, from the one that held ``now_ms`` minus ``hours`` to the current one,
    so nothing of the last ``hours`` is left out (a minute after the hour, ``1h`` still
    holds what came a minute before it), and up to an hour more may be in."""
    current = now_ms // HOUR_MS
    first = (now_ms - hours * HOUR_MS) // HOUR_MS
    buckets = current - first + 1
    reads = Reads()
    for hour in range(first, current + 1):
        reads.hgetall(keys.stats(scenario, hour))
    days = range(first * HOUR_MS // DAY_MS, now_ms // DAY_MS + 1)
    for day in days:
        reads.zrange(keys.stats_items(scenario, CLICKS, day), 0, TOP_ITEMS * 2, desc=True)
    answers = await store.read(reads)
    totals: dict[str, float] = defaultdict(float)
    for fields in answers[:buckets]:
        for name, value in fields.items():
            totals[name.decode()] += float(value)
    stages: dict[str, dict[str, float]] = defaultdict(dict)
    for name, value in totals.items():
        if ":" in name:
            metric, stage = name.split(":", 1)
            stages[stage][metric] = value
    clicked: dict[str, float] = defaultdict(float)
    for rows in answers[buckets:]:
        for member, score in rows:
            item_id = decode_id(member)
            if item_id is not None:
                clicked[item_id] += score
    top = sorted(clicked, key=lambda item: -clicked[item])[:TOP_ITEMS]
    items = await _item_counts(store, keys, scenario, list(days), top)
    overall = {
        m: totals.get(stat_field(m, ALL_STAGES), 0.0)
        for m in (SERVED, IMPRESSIONS, CLICKS, CONVERSIONS)
    }
    return {
        "scenario": scenario,
        "window_hours": hours,
        **rates(overall),
        "stages": {stage: rates(counts) for stage, counts in sorted(stages.items())},
        "items": items,
    }


async def _item_counts(
    store: Store, keys: Keys, scenario: str, days: list[int], items: list[str]
) -> list[dict[str, Any]]:
    if not items:
        return []
    reads = Reads()
    metrics = (IMPRESSIONS, CLICKS, CONVERSIONS)
    for metric in metrics:
        for day in days:
            reads.zmscore(keys.stats_items(scenario, metric, day), items)
    answers = iter(await store.read(reads))
    counts = {item: dict.fromkeys(metrics, 0) for item in items}
    for metric in metrics:
        for _ in days:
            for item, score in zip(items, next(answers), strict=True):
                counts[item][metric] += int(score or 0)
    return [{"item_id": item, **counts[item]} for item in items]


class ServedCounter:
    """The items a reader served, per scenario, stage and hour, added up in memory and
    written at most once a second (in the background, off the request path). Counts of the
    last second are lost when a reader stops: ``served`` is approximate, the event counts
    are exact."""

    def __init__(self, keys: Keys, retention_days: int, every_s: float = 1.0) -> None:
        self.keys = keys
        self.retention_ms = retention_days * DAY_MS
        self.every_s = every_s
        self._pending: dict[tuple[str, int], dict[str, float]] = defaultdict(
            lambda: defaultdict(float)
        )
        self._flushing: asyncio.Task[None] | None = None

    def add(self, store: Store, scenario: str, stages: dict[str, int], now_ms: int) -> None:
        fields = self._pending[(scenario, now_ms // HOUR_MS)]
        for stage, served in stages.items():
            fields[stat_field(SERVED, stage)] += served
            fields[stat_field(SERVED, ALL_STAGES)] += served
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.get_running_loop().create_task(self._flush_soon(store))

    async def _flush_soon(self, store: Store) -> None:
        """Write every ``every_s`` while there is something to write, then stop."""
        while self._pending:
            await asyncio.sleep(self.every_s)
            await self.flush(store)

    async def flush(self, store: Store) -> None:
        """Write what was counted; on failure the counts return to be written next time."""
        pending, self._pending = self._pending, defaultdict(lambda: defaultdict(float))
        if not pending:
            return
        writes = Writes()
        for (scenario, hour), fields in pending.items():
            key = self.keys.stats(scenario, hour)
            writes.hincr_float(key, fields)
            writes.expire_at(key, ((hour + 1) * HOUR_MS + self.retention_ms) // 1000)
        try:
            await store.apply(writes)
        except Exception:  # noqa: BLE001 - a failed count must never fail a request
            for bucket, fields in pending.items():
                for name, value in fields.items():
                    self._pending[bucket][name] += value
