"""Agent group ``attribution``: counts of recommendations' impressions, clicks and
conversions per scenario, stage and item (see model.py), and the clicks remembered per user
to credit later conversions."""

from __future__ import annotations

import time

from pipeline.core.events import Event, split_forgets
from pipeline.core.feedback import Feedback
from pipeline.core.keys import Keys
from pipeline.core.settings import Settings
from pipeline.features.attribution.model import DAY_MS, HOUR_MS, count, parse_recommendation_id
from pipeline.store.base import Reads, Store, Writes
from pipeline.stream.handler import EventHandler

# Items counted per scenario, day and metric (the long tail beyond is dropped).
MAX_ITEMS_PER_DAY = 10_000


class AttributionHandler(EventHandler):
    name = "attribution"

    def __init__(self, settings: Settings, keys: Keys) -> None:
        super().__init__(settings, keys)
        self.feedback = Feedback(settings.event_weights, settings.positive_rating)
        self.window_ms = settings.attribution_window_s * 1000
        self.retention_ms = settings.stats_retention_days * DAY_MS

    def _needs_memory(self, event: Event) -> bool:
        return (
            event.item_id is not None
            and parse_recommendation_id(event.recommendation_id) is None
            and self.feedback.is_conversion(event)
        )

    async def plan(self, store: Store, records: list[Event]) -> Writes:
        writes = Writes()
        # Privacy requests first: a user's events before the forget go with the rest.
        events, forgotten = split_forgets(records)
        users = sorted({e.user_id for e in events if self._needs_memory(e)} - forgotten)
        remembered: dict[str, dict[str, tuple[str, int]]] = {}
        if users:
            reads = Reads()
            for user in users:
                reads.hgetall(self.keys.attribution(user))
            for user, stored in zip(users, await store.read(reads), strict=True):
                remembered[user] = _parse_memory(stored)
        # Topics are not ordered against each other: a click and the purchase after it may
        # arrive in one batch in either order. Event time decides.
        events.sort(key=lambda event: event.timestamp_ms)
        counts = count(events, self.feedback, remembered, self.window_ms)
        for user in sorted(forgotten):
            writes.delete(self.keys.attribution(user))
        for (scenario, hour), fields in counts.hourly.items():
            key = self.keys.stats(scenario, hour)
            writes.hincr_float(key, fields)
            writes.expire_at(key, ((hour + 1) * HOUR_MS + self.retention_ms) // 1000)
        for (scenario, day, metric), items in counts.items.items():
            expire_s = ((day + 1) * DAY_MS + self.retention_ms) // 1000
            writes.zincr_trim(
                self.keys.stats_items(scenario, metric, day),
                items,
                MAX_ITEMS_PER_DAY,
                expire_at_s=expire_s,
            )
        now_s = int(time.time())
        for user, clicks in counts.remembered.items():
            key = self.keys.attribution(user)
            writes.hset(key, {item: f"{rid} {ts}" for item, (rid, ts) in clicks.items()})
            writes.expire_at(key, now_s + self.window_ms // 1000)
        return writes


def _parse_memory(stored: dict[bytes, bytes]) -> dict[str, tuple[str, int]]:
    """The attribution hash as item -> (recommendation_id, timestamp_ms); malformed entries
    are skipped."""
    out = {}
    for raw_item, raw_value in stored.items():
        try:
            rid, ts = raw_value.decode().split(" ", 1)
            out[raw_item.decode()] = (rid, int(ts))
        except (UnicodeDecodeError, ValueError):
            continue
    return out
