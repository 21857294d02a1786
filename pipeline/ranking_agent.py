"""Agent group ``ranking``: impressions and clicks teach the click model (see ranking.py).

Redis holds the only copy of the weights (``{p}:rank:weights``, hashed feature index ->
weight). Each batch starts from a fresh model, loads the current weight of every index the
batch touches (one HMGET), learns, and writes the changes as HINCRBYFLOAT increments.
Increments commute, so any number of workers can share the table; a restarted worker needs
no snapshot of its own; and a retried transaction (the fence moved) recomputes its plan from
Redis, not from state an aborted attempt left behind.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from pipeline.catalog import categories_of
from pipeline.events import Event
from pipeline.keys import Keys
from pipeline.ranking import observations, ranking_config
from pipeline.settings import Settings
from pipeline.store import queue_hincrbyfloat_many
from pipeline.streaming import EventTopicHandler

LEARNING_TYPES = frozenset({"click", "impression"})


def _no_writes(pipe: Any) -> None:
    return None


class RankingHandler(EventTopicHandler):
    name = "ranking"

    def __init__(self, settings: Settings, keys: Keys) -> None:
        self.settings = settings
        self.keys = keys
        self.config = ranking_config(settings)
        super().__init__(settings)

    async def plan(self, redis: aioredis.Redis, records: list[Event]) -> Any:
        events = [event for event in records if event.event_type in LEARNING_TYPES]
        if not events:
            return _no_writes
        item_ids = sorted(
            {item for event in events for item in event.items}
            | {event.item_id for event in events if event.item_id is not None}
        )
        categories = await categories_of(redis, self.keys, item_ids)

        config = self.config
        # A fresh model per call: nothing an earlier (aborted) attempt learned leaks in.
        model = config.model()
        steps = [
            (model.indexes(names), clicked, weight)
            for event in events
            for names, clicked, weight in observations(
                event, categories, config.impression_weight, config.click_weight
            )
        ]
        if not steps:
            return _no_writes
        touched = sorted({index for indexes, _, _ in steps for index in indexes})
        key = self.keys.rank_weights()
        stored = await redis.hmget(key, touched)
        model.set_weights(
            {
                index: float(value)
                for index, value in zip(touched, stored, strict=True)
                if value is not None
            }
        )
        # Events in arrival order: per partition that is each user's order.
        for indexes, clicked, weight in steps:
            model.learn_indexes(indexes, clicked, weight)
        deltas = model.drain_deltas()

        def queue(pipe: Any) -> None:
            queue_hincrbyfloat_many(pipe, key, deltas)

        return queue
