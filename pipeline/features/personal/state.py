"""The personal engine's state in Redis: what a worker loads and what a batch writes.

Keys (``pipeline.core.keys``): per user ``user:{id}:history`` (JSON), ``user:{id}:factors``
(base64 float32), ``user:{id}:alias`` and ``foryou:{id}`` (the served list), all expiring
when idle; per item ``mf:items`` (index, bias and factors as packed float32, written as
commutative deltas: ``Writes.hadd_vectors``), per content bucket ``mf:words`` (the words'
factors, ``words.py``, written the same way), ``mf:freshness`` (the freshness prior,
``freshness.py``, likewise) and the cold-start popularity ``personal:trending:{gen}``;
related items through ``features.related.state``.
Nothing is pickled.

Several workers of the group share the item rows: each adds what its batch changed to the
stored rows (never writes a whole row), and reads the rows of its batch's items again before
learning it (:func:`refresh_items`), so what other workers learned is neither lost nor long
ignored.
"""

from __future__ import annotations

import time

import orjson

from pipeline.core.decay import expire_at_s, generation
from pipeline.core.events import Event
from pipeline.core.feedback import SIGNALS
from pipeline.core.keys import Keys
from pipeline.features.personal.changes import Changes
from pipeline.features.personal.engine import Engine
from pipeline.features.related import state as related_state
from pipeline.store.base import Reads, Store, Writes


def foryou_payload(engine: Engine, user_id: str, n: int) -> bytes:
    """The stored "for you" list: what the reader serves, with each item's source."""
    return orjson.dumps(engine.recommender.entries(user_id, n))


async def load_items(store: Store, keys: Keys, engine: Engine, now_ms: int) -> None:
    """Every item-level state into ``engine``: factors, popularity, cold-start trending
    (the generation current at ``now_ms`` and the next) and related lists."""
    stored = await store.hgetall(keys.mf_items())
    engine.restore_items({item.decode(): row for item, row in stored.items()})
    if engine.model.words is not None:
        words = await store.hgetall(keys.mf_words())
        engine.restore_words({bucket.decode(): row for bucket, row in words.items()})
    if engine.model.freshness is not None:
        engine.restore_freshness(await store.hget(keys.mf_freshness(), FRESHNESS_FIELD))
    for signal, counts in (await related_state.load_popularity(store, keys)).items():
        engine.neighbours.load_popularity(signal, counts)
    now_gen = generation(now_ms, engine.trending.half_life_s)
    generations = (now_gen, now_gen + 1)
    reads = Reads()
    for gen in generations:
        reads.hgetall(keys.cold_trending(gen))
    rows = await store.read(reads)
    engine.trending.load(
        {
            gen: {item_id.decode(): float(value) for item_id, value in row.items()}
            for gen, row in zip(generations, rows, strict=True)
        }
    )
    await related_state.load_counts(store, keys, engine.cooc)
    engine.rebuild_negative_pool()


def batch_items(events: list[Event]) -> list[str]:
    """The items a batch's events name (clicked, converted, shown), sorted."""
    items = {event.item_id for event in events if event.item_id is not None}
    for event in events:
        if event.items:
            items.update(event.items)
    return sorted(items)


# The field of ``{p}:mf:freshness`` that holds the freshness prior (``freshness.py``).
FRESHNESS_FIELD = "bias"

# Items per ZMSCORE when reading creation times (a worker's start reads every item's).
CREATED_CHUNK = 10_000


async def read_created(
    store: Store, keys: Keys, engine: Engine, items: list[str], now_s: float
) -> None:
    """Tell ``engine`` the catalog's creation times of ``items``, in one round trip (the
    scores of ``{p}:items``, where 0 means the record has no ``created_at``; chunks of
    :data:`CREATED_CHUNK` items). Items without a catalog record stay untold and are noted
    as asked at ``now_s``: a batch that names them a minute later asks again."""
    if not items:
        return
    reads = Reads()
    chunks = [items[at : at + CREATED_CHUNK] for at in range(0, len(items), CREATED_CHUNK)]
    for chunk in chunks:
        reads.zmscore(keys.items(), chunk)
    scores = [score for column in await store.read(reads) for score in column]
    engine.set_created(
        {
            item: (int(score) if score > 0 else None)
            for item, score in zip(items, scores, strict=True)
            if score is not None
        }
    )
    engine.created.unanswered(
        [item for item, score in zip(items, scores, strict=True) if score is None], now_s
    )


async def refresh_items(store: Store, keys: Keys, engine: Engine, items: list[str]) -> None:
    """Read again, in one round trip, what other workers of the group may have added to
    ``items`` since this worker last read them: factor rows, popularity counts, the rows of
    their words and the freshness prior. Items not stored yet are left alone (learning
    creates them).

    Related lists are not read again per batch (a few hundred sorted sets per batch cost
    more than the learning): the served lists are read from Redis, which holds every
    worker's counts; the copy that the for-you blend scores with is complete again at each
    reload (start, partition rebalance, a batch that did not commit)."""
    if not items:
        return
    reads = Reads().hmget(keys.mf_items(), items)
    for signal in SIGNALS:
        reads.hmget(keys.popularity(signal), items)
    buckets = engine.word_buckets(items)
    if buckets:
        reads.hmget(keys.mf_words(), buckets)
    prior = engine.model.freshness is not None
    if prior:
        reads.hmget(keys.mf_freshness(), [FRESHNESS_FIELD])
    read = await store.read(reads)
    if prior:
        engine.restore_freshness(read.pop()[0])
    if buckets:
        words = read.pop()
        engine.restore_words({b: row for b, row in zip(buckets, words, strict=True) if row})
    answers = iter(read)
    rows = next(answers)
    engine.restore_items({item: row for item, row in zip(items, rows, strict=True) if row})
    for signal in SIGNALS:
        known = engine.cooc.popularity[signal]
        changed = {
            item: float(count)
            for item, count in zip(items, next(answers), strict=True)
            if count is not None and known.get(item) != float(count)
        }
        if changed:
            engine.neighbours.load_popularity(signal, changed)


async def load_users(store: Store, keys: Keys, engine: Engine, user_ids: list[str]) -> set[str]:
    """Users' history, factors and alias into ``engine``; returns the users they are
    aliases of (which must be loaded too)."""
    if not user_ids:
        return set()
    reads = Reads()
    for user_id in user_ids:
        reads.get(keys.user_history(user_id))
        reads.get(keys.user_factors(user_id))
        reads.get(keys.user_alias(user_id))
    values = await store.read(reads)
    targets = set()
    for index, user_id in enumerate(user_ids):
        history, factors, alias = values[3 * index : 3 * index + 3]
        target = alias.decode() if alias is not None else None
        engine.restore_user(
            user_id, orjson.loads(history) if history is not None else None, factors, target
        )
        if target is not None:
            targets.add(target)
    return targets


def foryou_writes(
    writes: Writes,
    engine: Engine,
    keys: Keys,
    users: list[str],
    ttl_s: int,
    foryou_size: int,
    budget_s: float,
) -> list[str]:
    """Recompute and write the lists of ``users`` in order until ``budget_s`` seconds have
    passed (0: no limit; at least one list per call); returns the users left to do."""
    started = time.perf_counter()
    for done, user_id in enumerate(users):
        if budget_s and done and time.perf_counter() - started > budget_s:
            return users[done:]
        writes.set(keys.foryou(user_id), foryou_payload(engine, user_id, foryou_size), ttl_s)
    return []


async def load_pending(store: Store, keys: Keys, limit: int) -> list[str]:
    """Users whose lists wait for a recompute, longest waiting first (at most ``limit``)."""
    rows = await store.zrange(keys.foryou_pending(), 0, limit - 1)
    return [member.decode() for member, _ in rows]


def forget_writes(changes: Changes, keys: Keys) -> Writes:
    """Deletes of every key of the users forgotten in the batch, and of the aliases that went
    with them (``{p}:foryou:pending`` membership is the agent's)."""
    writes = Writes()
    for user_id in sorted(changes.forgotten):
        writes.delete(
            keys.user_history(user_id),
            keys.user_factors(user_id),
            keys.foryou(user_id),
        )
    writes.delete(*(keys.user_alias(anonymous) for anonymous in sorted(changes.unaliased)))
    return writes


def changes_writes(engine: Engine, changes: Changes, keys: Keys, ttl_s: int) -> Writes:
    """The writes of one drained batch: user and item state, related items, popularity.
    The for-you lists are :func:`foryou_writes`'.

    What forgets erased goes first, so a user's events after the forget (in the same batch)
    are written as the user's new state."""
    writes = forget_writes(changes, keys)
    for user_id in changes.users - changes.removed_users:
        history, factors = engine.user_state(user_id)
        if history is not None:
            writes.set(keys.user_history(user_id), orjson.dumps(history), ttl_s)
        if factors is not None:
            writes.set(keys.user_factors(user_id), factors, ttl_s)
    for user_id in changes.removed_users:
        writes.delete(keys.user_history(user_id), keys.user_factors(user_id), keys.foryou(user_id))
    for anonymous, user_id in changes.aliases.items():
        writes.set(keys.user_alias(anonymous), user_id, ttl_s)
    writes.hadd_vectors(keys.mf_items(), changes.item_deltas)
    writes.hadd_vectors(keys.mf_words(), changes.word_deltas)
    if changes.freshness_delta is not None:
        writes.hadd_vectors(keys.mf_freshness(), {FRESHNESS_FIELD: (changes.freshness_delta, None)})
    related_state.queue_pairs(writes, keys, changes.pairs, engine.config.related.max_neighbours)
    related_state.queue_popularity(writes, keys, changes.popularity)
    cold: dict[int, dict[str, float]] = {}
    for (gen, item_id), amount in changes.trending.items():
        cold.setdefault(gen, {})[item_id] = amount
    half_life_s = engine.trending.half_life_s
    for gen, increments in cold.items():
        writes.hincr_float(keys.cold_trending(gen), increments)
        writes.expire_at(keys.cold_trending(gen), expire_at_s(gen, half_life_s))
    return writes
