"""Agent group ``segments``: events to forward-decayed user affinities (see segments.py).

Per batch: one pipelined read of the catalog fields of the batch's items, the pure fold,
then, inside the fenced transaction, one capped ZINCRBY script per (segment, generation)
and an exclusion marker per blacklist.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from pipeline.events import Event
from pipeline.keys import Keys
from pipeline.segments import (
    BLACKLISTED,
    expire_at_s,
    fold,
    item_segment,
    segment_key,
    segments_config,
)
from pipeline.segments_read import item_features
from pipeline.settings import Settings
from pipeline.store import queue_zincr_trim
from pipeline.streaming import EventTopicHandler


class SegmentsHandler(EventTopicHandler):
    name = "segments"

    def __init__(self, settings: Settings, keys: Keys) -> None:
        self.settings = settings
        self.keys = keys
        self.config = segments_config(settings)
        super().__init__(settings)
        # Sets may grow 10 % past the cap before a trim, so trims are occasional.
        self.trim_above = self.config.max_users + self.config.max_users // 10

    async def plan(self, redis: aioredis.Redis, records: list[Event]) -> Any:
        item_ids = sorted(
            {
                event.item_id
                for event in records
                if event.item_id is not None and self.config.weight_of(event) > 0
            }
        )
        catalog = await item_features(redis, self.keys, item_ids)
        deltas = fold(records, self.config, catalog)
        keys = self.keys
        keep = self.config.max_users
        trim_above = self.trim_above
        half_life = self.config.half_life_s

        def queue(pipe: Any) -> None:
            for (segment, gen), increments in deltas.increments.items():
                key = segment_key(keys, segment, gen)
                expire = expire_at_s(gen, half_life)
                queue_zincr_trim(pipe, key, increments, keep, trim_above, expire)
            for (item_id, gen), users in deltas.blacklisted.items():
                key = segment_key(keys, item_segment(item_id), gen)
                pipe.zadd(key, dict.fromkeys(sorted(users), BLACKLISTED))
                pipe.expireat(key, expire_at_s(gen, half_life))

        return queue
