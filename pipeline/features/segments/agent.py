"""Agent group ``segments``: events to forward-decayed user affinities (see model.py).

Per batch: one pipelined read of the catalog fields of the batch's items, the pure fold,
then one capped sorted-set increment per (segment, generation), an exclusion marker per
blacklist, and the users' indexes of the segments they entered (``state.py``).

A ``forget`` costs one more read (the forgotten users' indexes); the batch's writes then
start by removing those users from every segment their indexes list (docs/privacy.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pipeline.core.decay import expire_at_s
from pipeline.core.events import Event
from pipeline.core.keys import Keys
from pipeline.core.settings import Settings
from pipeline.features.catalog.read import CatalogCache
from pipeline.features.segments import state
from pipeline.features.segments.config import segments_config
from pipeline.features.segments.model import (
    BLACKLISTED,
    fold,
    item_segment,
    live_generations,
    segment_key,
)
from pipeline.store.base import Store, Writes
from pipeline.stream.handler import EventHandler


class SegmentsHandler(EventHandler):
    name = "segments"

    def __init__(self, settings: Settings, keys: Keys) -> None:
        super().__init__(settings, keys)
        self.config = segments_config(settings)
        self.catalog = CatalogCache(keys)
        # Sets may grow 10 % past the cap before a trim, so trims are occasional.
        self.trim_above = self.config.max_users + self.config.max_users // 10
        # Wall clock (epoch seconds): which indexes a forget may find alive.
        self.clock: Callable[[], float] = time.time

    async def plan(self, store: Store, records: list[Event]) -> Writes:
        item_ids = sorted(
            {
                event.item_id
                for event in records
                if event.item_id is not None and self.config.weight_of(event) > 0
            }
        )
        found = await self.catalog.fields(store, item_ids)
        catalog = {item_id: (f.categories, f.attributes) for item_id, f in found.items()}
        deltas = fold(records, self.config, catalog)
        keys = self.keys
        half_life = self.config.half_life_s
        writes = Writes()
        if deltas.forgotten:
            now_ms = int(self.clock() * 1000)
            alive = live_generations(now_ms, self.max_future_ms, half_life)
            entered = await state.load_entered(store, keys, sorted(deltas.forgotten), alive)
            state.forget_writes(writes, keys, entered, alive)
        for (segment, gen), increments in deltas.increments.items():
            writes.zincr_trim(
                segment_key(keys, segment, gen),
                increments,
                self.config.max_users,
                self.trim_above,
                expire_at_s(gen, half_life),
            )
        # Right after the increments: the store sends the indexes in the same script call.
        state.index_writes(writes, keys, deltas.entered, half_life)
        for (item_id, gen), users in deltas.blacklisted.items():
            key = segment_key(keys, item_segment(item_id), gen)
            writes.zadd(key, dict.fromkeys(sorted(users), BLACKLISTED))
            writes.expire_at(key, expire_at_s(gen, half_life))
        return writes
