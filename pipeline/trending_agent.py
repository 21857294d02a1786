"""Agent group ``trending``: events to forward-decayed sorted sets (see trending.py)."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from pipeline.catalog import categories_of
from pipeline.events import Event
from pipeline.keys import Keys
from pipeline.settings import Settings
from pipeline.store import queue_zincr_trim
from pipeline.streaming import EventTopicHandler
from pipeline.trending import TrendingConfig, expire_at_s, fold


def trending_config(settings: Settings) -> TrendingConfig:
    return TrendingConfig(
        windows=settings.trending_windows,
        kinds=settings.trending_kinds,
        weights=settings.event_weights,
        positive_rating=settings.positive_rating,
    )


class TrendingHandler(EventTopicHandler):
    name = "trending"

    def __init__(self, settings: Settings, keys: Keys) -> None:
        self.settings = settings
        self.keys = keys
        self.config = trending_config(settings)
        super().__init__(settings)

    async def plan(self, redis: aioredis.Redis, records: list[Event]) -> Any:
        item_ids = sorted({event.item_id for event in records if event.item_id is not None})
        categories = await categories_of(redis, self.keys, item_ids)
        deltas = fold(records, self.config, categories)
        max_items = self.settings.trending_max_items
        windows = self.config.windows

        def queue(pipe: Any) -> None:
            for (kind, window, gen, category), increments in deltas.items():
                key = self.keys.trending(kind, window, gen, category)
                queue_zincr_trim(
                    pipe, key, increments, max_items, expire_at_s=expire_at_s(gen, windows[window])
                )

        return queue
