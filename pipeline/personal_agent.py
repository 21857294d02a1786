"""Agent group ``personal``: history, related items and the for-you model, per event.

The worker keeps an :class:`~pipeline.engine.Engine` in memory as a cache of Redis: item
state (factors, co-occurrence, popularity) is loaded once at start, a user's state when
the user first appears in a batch. Each batch is learned by the engine and everything it
touched is written back in the batch's fenced transaction, including the fresh "for you"
list of every user in the batch, so a user's list reflects an event within the same flush.

If a transaction does not commit, the in-memory engine may hold learning that Redis does
not: the handler then drops the engine and reloads it from Redis before the next batch.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from typing import Any

import orjson
import redis.asyncio as aioredis

from pipeline.engine import Engine, engine_config
from pipeline.events import Event
from pipeline.history import UserHistory
from pipeline.keys import Keys
from pipeline.related import RELATIONS
from pipeline.settings import Settings
from pipeline.store import queue_hincrbyfloat_many, queue_zincr_trim
from pipeline.streaming import EventTopicHandler
from pipeline.trending import expire_at_s, generation

log = logging.getLogger(__name__)

_SCAN_CHUNK = 500


def foryou_payload(engine: Engine, user_id: str, n: int) -> bytes:
    """The stored "for you" list: what the reader serves, with each item's source."""
    return orjson.dumps(
        [
            {"item_id": r.item_id, "score": round(r.score, 6), "source": r.source}
            for r in engine.recommend(user_id, n)
        ]
    )


class PersonalHandler(EventTopicHandler):
    name = "personal"

    def __init__(self, settings: Settings, keys: Keys) -> None:
        self.settings = settings
        self.keys = keys
        super().__init__(settings)
        self.reset()

    def reset(self) -> None:
        """Forget everything cached; the next batch reloads from Redis."""
        self.engine = Engine(engine_config(self.settings))
        self.items_loaded = False
        self.users_loaded: dict[str, None] = {}
        self.uncommitted = False

    # --- Handler protocol --------------------------------------------------------------------

    def committed(self) -> None:
        self.uncommitted = False

    def aborted(self) -> None:
        log.warning("personal: batch not committed; reloading state from Redis")
        self.reset()

    async def plan(self, redis: aioredis.Redis, records: list[Event]) -> Any:
        if self.uncommitted:
            # A retry of a batch this engine already learned: start again from Redis.
            self.reset()
        if not self.items_loaded:
            await self._load_items(redis)
        await self._load_users(redis, records)
        self.uncommitted = True
        engine = self.engine
        for event in sorted(records, key=lambda e: e.timestamp_ms):
            engine.learn(event)
        changes = engine.drain_changes()
        keys, settings = self.keys, self.settings
        ttl = settings.user_ttl_s
        users = {}
        for user_id in changes.users - changes.removed_users:
            history = engine.histories.get(user_id)
            users[user_id] = (
                orjson.dumps(history.to_state()) if history else None,
                engine.model.user_state(user_id),
                foryou_payload(engine, user_id, settings.foryou_size),
            )
        items = {
            item: orjson.dumps(engine.model.item_state(item))
            for item in changes.items
            if item in engine.model.item_index
        }
        related: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for relation, a, b, amount in changes.pairs:
            related[(relation, a)][b] += amount
        cap = engine.config.related.max_neighbours
        popularity: dict[str, dict[str, float]] = defaultdict(dict)
        for (kind, item_id), amount in changes.popularity.items():
            popularity[kind][item_id] = amount
        cold_trending: dict[int, dict[str, float]] = defaultdict(dict)
        for (gen, item_id), amount in changes.trending.items():
            cold_trending[gen][item_id] = amount
        half_life_s = engine.trending.half_life_s

        def queue(pipe: Any) -> None:
            for user_id, (history, factors, foryou) in users.items():
                if history is not None:
                    pipe.set(keys.user_history(user_id), history, ex=ttl)
                if factors is not None:
                    pipe.set(keys.user_factors(user_id), factors, ex=ttl)
                pipe.set(keys.foryou(user_id), foryou, ex=ttl)
            for user_id in changes.removed_users:
                pipe.delete(
                    keys.user_history(user_id), keys.user_factors(user_id), keys.foryou(user_id)
                )
            for anonymous, user_id in changes.aliases.items():
                pipe.set(keys.user_alias(anonymous), user_id, ex=ttl)
            if items:
                pipe.hset(keys.mf_items(), mapping=items)
            for (relation, item_id), increments in related.items():
                queue_zincr_trim(pipe, keys.related(relation, item_id), increments, cap, 2 * cap)
            if related:
                pipe.sadd(keys.related_anchors(), *{item_id for _, item_id in related})
            for kind, increments in popularity.items():
                queue_hincrbyfloat_many(pipe, keys.popularity(kind), increments)
            for gen, increments in cold_trending.items():
                queue_hincrbyfloat_many(pipe, keys.cold_trending(gen), increments)
            for gen in {gen for gen, _ in changes.trending}:
                pipe.expireat(keys.cold_trending(gen), expire_at_s(gen, half_life_s))

        return queue

    # --- loading state from Redis ------------------------------------------------------------
    async def _load_items(self, redis: aioredis.Redis) -> None:
        engine, keys = self.engine, self.keys
        stored = [
            (item_id.decode(), orjson.loads(state))
            for item_id, state in (await redis.hgetall(keys.mf_items())).items()
        ]
        # In the original index order (HGETALL's order is arbitrary).
        for item_id, state in sorted(stored, key=lambda pair: (pair[1].get("i", 1 << 62), pair[0])):
            engine.model.set_item_state(item_id, state)
        for kind in ("click", "conversion"):
            counts = await redis.hgetall(keys.popularity(kind))
            engine.load_popularity(
                kind, {item_id.decode(): float(count) for item_id, count in counts.items()}
            )
        now_gen = generation(int(time.time() * 1000), engine.trending.half_life_s)
        stored = {}
        for gen in (now_gen, now_gen + 1):
            values = await redis.hgetall(keys.cold_trending(gen))
            stored[gen] = {item_id.decode(): float(value) for item_id, value in values.items()}
        engine.trending.load(stored)
        # Items with related lists are indexed in one set: no keyspace scan at start.
        anchors = sorted(member.decode() for member in await redis.smembers(keys.related_anchors()))
        for start in range(0, len(anchors), _SCAN_CHUNK):
            await self._load_related(redis, anchors[start : start + _SCAN_CHUNK])
        self.items_loaded = True
        log.info("personal: loaded %d items from Redis", len(engine.model.item_ids))

    async def _load_related(self, redis: aioredis.Redis, anchors: list[str]) -> None:
        async with redis.pipeline(transaction=False) as pipe:
            for anchor in anchors:
                for relation in RELATIONS:
                    pipe.zrange(self.keys.related(relation, anchor), 0, -1, withscores=True)
            results = iter(await pipe.execute())
        counts = self.engine.cooc.counts
        for anchor in anchors:
            for relation in RELATIONS:
                members = next(results)
                if members:
                    counts[relation][anchor] = {m.decode(): score for m, score in members}

    async def _load_users(self, redis: aioredis.Redis, records: list[Event]) -> None:
        wanted = {e.user_id for e in records} | {
            e.previous_user_id for e in records if e.previous_user_id
        }
        missing = [user for user in wanted if user not in self.users_loaded]
        aliased = await self._load(redis, missing)
        # Events of an aliased id go to the user it became: that user must be loaded too,
        # and must not be evicted below.
        await self._load(redis, [user for user in aliased if user not in self.users_loaded])
        wanted |= {self.engine.aliases[user] for user in wanted if user in self.engine.aliases}
        # Bounded memory: forget the users loaded longest ago; Redis still has them.
        excess = len(self.users_loaded) - self.settings.max_cached_users
        if excess > 0:
            for user_id in list(self.users_loaded)[:excess]:
                if user_id not in wanted:
                    del self.users_loaded[user_id]
                    self.engine.histories.pop(user_id, None)
                    self.engine.aliases.pop(user_id, None)
                    self.engine.model.user_factors.pop(user_id, None)

    async def _load(self, redis: aioredis.Redis, user_ids: list[str]) -> set[str]:
        """Load users' history, factors and alias; returns the users they are aliases of."""
        if not user_ids:
            return set()
        async with redis.pipeline(transaction=False) as pipe:
            for user_id in user_ids:
                pipe.get(self.keys.user_history(user_id))
                pipe.get(self.keys.user_factors(user_id))
                pipe.get(self.keys.user_alias(user_id))
            values = await pipe.execute()
        engine = self.engine
        targets = set()
        for index, user_id in enumerate(user_ids):
            history, factors, alias = values[3 * index : 3 * index + 3]
            if history is not None:
                engine.histories[user_id] = UserHistory.from_state(
                    orjson.loads(history), max_len=engine.config.history_len
                )
            if factors is not None:
                engine.model.set_user_state(user_id, factors)
            if alias is not None:
                engine.aliases[user_id] = alias.decode()
                targets.add(alias.decode())
            self.users_loaded[user_id] = None
        return targets
