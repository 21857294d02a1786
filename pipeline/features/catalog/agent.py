"""Agent group ``catalog``: item records into Redis hashes (see model.py for the layout).

An item's record may arrive after its events, or change: trending per category and the
attribute segments then follow the item's current categories and attributes as if they had
been known from the start. Before the new records are written, the agent reads what the
store held of each item and moves the item's trending scores and segment affinities from the
categories and attributes it lost to those it gained (``trending/state.py``,
``segments/state.py``), in the same transaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pipeline.core.events import Rejection
from pipeline.core.items import Item, parse_item_message
from pipeline.core.keys import Keys
from pipeline.core.settings import Settings, load_settings
from pipeline.features.catalog.model import item_hash, latest_versions
from pipeline.features.catalog.read import ATTRIBUTES, CATEGORIES, item_fields
from pipeline.features.segments import state as segments_state
from pipeline.features.segments.config import segments_config
from pipeline.features.segments.model import attribute_segments
from pipeline.features.trending import state as trending_state
from pipeline.features.trending.config import trending_config
from pipeline.store.base import Store, Writes
from pipeline.stream.handler import Handler


class CatalogHandler(Handler[Item]):
    """Reads the catalog topic; each item's latest version replaces its hash whole."""

    name = "catalog"
    phase = 0

    def __init__(self, keys: Keys, settings: Settings | None = None) -> None:
        self.keys = keys
        settings = settings if settings is not None else load_settings()
        self.trending = trending_config(settings)
        self.trending_max_items = settings.trending_max_items
        self.segments = segments_config(settings)
        self.max_future_ms = int(settings.max_future_skew_s * 1000)
        # Wall clock (epoch seconds): which generations of counters may be alive.
        self.clock: Callable[[], float] = time.time

    def decode(self, value: bytes | None) -> tuple[list[Item], list[Rejection]]:
        item, rejection = parse_item_message(value)
        if item is not None:
            return [item], []
        assert rejection is not None
        return [], [rejection]

    async def plan(self, store: Store, records: list[Item]) -> Writes:
        latest = latest_versions(records)
        writes = await self._moves(store, latest)
        for item in latest.values():
            key = self.keys.item(item.item_id)
            writes.delete(key)
            writes.hset(key, item_hash(item))
            writes.zadd(self.keys.items(), {item.item_id: item.created_at_ms or 0})
        unavailable = self.keys.unavailable_items()
        writes.srem(unavailable, sorted(i.item_id for i in latest.values() if i.available))
        writes.sadd(unavailable, sorted(i.item_id for i in latest.values() if not i.available))
        # Readers cache the unavailable set until this moves.
        return writes.incr(self.keys.catalog_version())

    async def _moves(self, store: Store, latest: dict[str, Item]) -> Writes:
        """Trending and segment moves of the items whose categories or attributes change."""
        stored = await item_fields(store, self.keys, sorted(latest), (CATEGORIES, ATTRIBUTES))
        now_ms = int(self.clock() * 1000)
        limit = self.segments.max_attributes
        trending: dict[str, tuple[list[str], list[str]]] = {}
        segments = {}
        for item_id, before in stored.items():
            item = latest[item_id]
            trending[item_id] = (before.categories, list(item.categories))
            segments[item_id] = (
                attribute_segments(before.categories, before.attributes, limit),
                attribute_segments(item.categories, item.attributes, limit),
            )
        writes = await trending_state.move_writes(
            store,
            self.keys,
            self.trending,
            self.trending_max_items,
            trending,
            now_ms,
            self.max_future_ms,
        )
        half_life = self.segments.half_life_s
        max_users = self.segments.max_users
        return writes.extend(
            await segments_state.move_writes(
                store,
                self.keys,
                segments,
                trending_state.live_generations(now_ms, self.max_future_ms, half_life),
                max_users,
                max_users + max_users // 10,
                half_life,
            )
        )
