"""Agent group ``ranking``: impressions and clicks teach the click model (see model.py).

Redis holds the only copy of the weights (``{p}:rank:weights``, hashed feature index ->
weight) and of AdaGrad's sums of squared gradients (``{p}:rank:sums``). Each batch starts
from a fresh model, reads the weight and sum of every index the batch touches, learns the
batch's observations one AdaGrad step each in event-time order (``ClickModel.learn_batch``),
and writes the changes of both: as HINCRBYFLOAT increments, which commute, so any number of
workers can share the tables; or, while this worker holds every partition of the group
(nobody else writes them), as the new values themselves (HSET), with both tables watched from
before they are read, and keeping in memory what it read and wrote (``read.LearnedTables``),
so a batch reads only the indexes it meets for the first time; a retried or aborted batch,
or a rebalance, drops what is kept. A restarted worker needs no snapshot of its own, and a retried
transaction (a fence or a table moved) recomputes its plan from Redis, not from state an
aborted attempt left behind.
"""

from __future__ import annotations

import asyncio

import numpy as np

from pipeline.core.events import Event
from pipeline.core.keys import Keys
from pipeline.core.settings import Settings
from pipeline.features.catalog.read import CatalogCache
from pipeline.features.ranking.config import ranking_config
from pipeline.features.ranking.features import item_attribute_features, user_attribute_features
from pipeline.features.ranking.kernels import load_kernels
from pipeline.features.ranking.model import MovedFeatures, StepBatch
from pipeline.features.ranking.read import MAX_KEPT_BITS, LearnedTables, stored_learning_state
from pipeline.features.users.read import users_attributes
from pipeline.store.base import Store, Writes
from pipeline.stream.handler import EventHandler

LEARNING_TYPES = frozenset({"click", "impression"})


class RankingHandler(EventHandler):
    name = "ranking"

    def __init__(self, settings: Settings, keys: Keys) -> None:
        super().__init__(settings, keys)
        self.config = ranking_config(settings)
        # Hashing is pure: one indexer (and its caches) serves every batch.
        self.indexer = self.config.model().indexer()
        self.catalog = CatalogCache(keys)
        # True while this worker holds every partition of the group's topics (the usual
        # single worker): nobody else writes the tables, so a batch sets the values it
        # changed (HSET, a field in well under a microsecond) instead of adding increments
        # (HINCRBYFLOAT, several microseconds each in Redis: most of a batch's time there).
        # False (increments: exact for any number of workers) until told.
        self.exclusive = False
        # While exclusive, the tables' values this worker read or wrote (Redis holds the
        # same): a batch reads only the indexes it has not met yet. None: nothing kept.
        self.kept: LearnedTables | None = None
        # What the last plan moved, kept once its batch commits; True from a plan to its
        # outcome (a plan called again meanwhile is a retry: the kept values may be stale).
        self.moved: MovedFeatures | None = None
        self.planning = False
        # One int32 per hashable index (4 MB at 20 bits), all -1 between batches: a batch's
        # distinct features are found in one pass (StepBatch.of_indexed). None: sorted instead.
        self.slot_table: np.ndarray | None = None
        if self.config.n_bits <= MAX_KEPT_BITS:
            self.slot_table = np.full(1 << self.config.n_bits, -1, dtype=np.int32)

    def owns_every_partition(self, exclusive: bool) -> None:
        self.exclusive = exclusive
        if not exclusive:
            self.kept = None

    def committed(self) -> None:
        if self.kept is not None and self.moved is not None:
            self.kept.update(self.moved)
        self.moved, self.planning = None, False

    def aborted(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.kept, self.moved, self.planning = None, None, False

    def warm(self) -> None:
        load_kernels()

    async def plan(self, store: Store, records: list[Event]) -> Writes:
        if self.planning:
            # A retry: another writer may have moved the tables since they were kept.
            self.reset()
        self.planning = True
        writes = Writes()
        # Event-time order (stable for equal times), so that how topics and partitions were
        # interleaved in this batch does not change what is learned.
        events = sorted(
            (event for event in records if event.event_type in LEARNING_TYPES),
            key=lambda event: event.timestamp_ms,
        )
        if not events:
            return writes
        item_ids = sorted(
            {item for event in events for item in event.items}
            | {event.item_id for event in events if event.item_id is not None}
        )
        users = sorted({event.user_id for event in events})
        # Both reads at once: the batch's items' catalog fields and its users' attributes.
        catalog, stored = await asyncio.gather(
            self.catalog.fields(store, item_ids), users_attributes(store, self.keys, users)
        )
        attributes = {user_id: user_attribute_features(found) for user_id, found in stored.items()}
        categories = {item_id: found.categories for item_id, found in catalog.items()}
        # Item attributes cross with user attributes only: their features when a user has some.
        item_attributes: dict[str, tuple[str, ...]] = {}
        if any(attributes.values()):
            item_attributes = {
                item_id: item_attribute_features(found.attributes)
                for item_id, found in catalog.items()
            }
        config = self.config
        # A fresh model per call: nothing an earlier (aborted) attempt learned leaks in.
        model = config.model()
        indexed = self.indexer.batch(
            events,
            categories,
            config.impression_weight,
            config.click_weight,
            attributes,
            item_attributes,
        )
        if not len(indexed.clicked):
            return writes
        tables = self.keys.rank_weights(), self.keys.rank_sums()
        exclusive = self.exclusive
        if exclusive:
            # Watched before they are read: should another writer touch the tables after all
            # (a rebalance under way), the transaction starts again from what it wrote.
            await store.watch(tables)
        batch = StepBatch.of_indexed(indexed, self.slot_table)
        if exclusive and config.n_bits <= MAX_KEPT_BITS:
            if self.kept is None:
                self.kept = LearnedTables(config.n_bits)
            weights, sums = await self.kept.read(store, self.keys, batch.present)
        else:
            weights, sums = await stored_learning_state(store, self.keys, batch.indexes)
        moved = model.learn_batch(batch, weights, sums)
        self.moved = moved
        if exclusive:
            writes.hset(tables[1], dict(zip(moved.indexes, moved.sums, strict=True)))
            return writes.hset(tables[0], dict(zip(moved.indexes, moved.weights, strict=True)))
        # Increments from the values read (a value that ended where it started adds none).
        for table, before, after in (
            (tables[1], moved.sums_before, moved.sums),
            (tables[0], moved.weights_before, moved.weights),
        ):
            changes = zip(moved.indexes, before, after, strict=True)
            writes.hincr_float(table, {i: new - old for i, old, new in changes if new != old})
        return writes
