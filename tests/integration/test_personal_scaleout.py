"""Two personal workers (partitions split between them) end with the state of one worker
over the same log: histories, logins and counters exactly, item factors within a bound
(docs/architecture.md, "Exactly-once effects").

The workers are two handlers in this process, each applying its own partition's batches
through the real batch loop on one real Redis, concurrently: their transactions interleave
as two processes' would (the consumer group only decides which partitions each one gets).
"""

from __future__ import annotations

import asyncio
import math
import time
import zlib
from typing import Any

import numpy as np
import orjson
import pytest

from pipeline.core.events import Event, event_from_dict
from pipeline.core.keys import Keys
from pipeline.core.settings import Settings
from pipeline.features.personal import state
from pipeline.features.personal.agent import PersonalHandler
from pipeline.features.personal.config import personal_config
from pipeline.features.personal.engine import Engine
from pipeline.store.base import Reads, Store
from pipeline.store.redis import connect
from pipeline.stream.batch import RawMessage, process_batch, retry_transient
from pipeline.stream.fence import Position
from pipeline.tools.synthetic import SyntheticConfig, SyntheticWorld

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

PARTITIONS = 2
BATCH = 200
HELD_OUT = 600


async def no_dead_letters(records: list) -> None:
    raise AssertionError(f"unexpected dead letters: {records}")


def partition_of(event: Event) -> int:
    # As Kafka keys events by user id: an anonymous id and the user it becomes usually
    # land on different partitions.
    return zlib.crc32(event.user_id.encode()) % PARTITIONS


def log(seed: int) -> list[Event]:
    world = SyntheticWorld(
        SyntheticConfig(
            seed=seed,
            n_users=250,
            n_items=200,
            anonymous_fraction=0.5,
            login_prob=0.8,
            start_ms=int(time.time() * 1000) - 3_600_000,
        )
    )
    return [event_from_dict(raw) for raw in world.events(5000)]


def messages(events: list[Event], partition: int | None) -> list[RawMessage]:
    offsets = [0] * PARTITIONS
    out = []
    for event in events:
        p = partition_of(event)
        if partition is None or p == partition:
            out.append(RawMessage(Position("events", p, offsets[p]), None, event.to_json()))
        offsets[p] += 1
    return out


async def run_worker(store: Store, keys: Keys, handler: PersonalHandler, batch: list) -> None:
    for start in range(0, len(batch), BATCH):
        part = batch[start : start + BATCH]
        # As the worker's loop does: a transaction that kept conflicting is tried again.
        await retry_transient(
            lambda part=part: process_batch(store, keys, handler, part, no_dead_letters),
            store.transient_errors,
            "personal batch",
        )
        # Let the other worker's batch interleave with this one's.
        await asyncio.sleep(0)


async def user_state(store: Store, keys: Keys, users: list[str]) -> dict[str, Any]:
    reads = Reads()
    for user in users:
        reads.get(keys.user_history(user)).get(keys.user_alias(user))
    values = await store.read(reads)
    out = {}
    for index, user in enumerate(users):
        history, alias = values[2 * index : 2 * index + 2]
        out[user] = (orjson.loads(history) if history else None, alias)
    return out


async def hashes(store: Store, key: str) -> dict[bytes, float]:
    return {field: float(value) for field, value in (await store.hgetall(key)).items()}


async def loaded_engine(settings: Settings, store: Store, keys: Keys, users: list[str]) -> Engine:
    engine = Engine(personal_config(settings))
    await state.load_items(store, keys, engine, int(time.time() * 1000))
    await state.load_users(store, keys, engine, users)
    return engine


def hit_rate(engine: Engine, held_out: list[Event]) -> float:
    cases = hits = 0
    for event in held_out:
        if event.event_type in ("click", "buy", "consume", "basket") and event.item_id:
            user = engine.aliases.get(event.user_id, event.user_id)
            shown = {r.item_id for r in engine.recommend(user, 10)}
            hits += event.item_id in shown
            cases += 1
    assert cases > 100
    return hits / cases


def item_matrix(engine: Engine, items: list[str]) -> np.ndarray:
    model = engine.model
    return np.stack([model.item_factors[model.item_index[item]] for item in items])


async def test_two_workers_end_with_the_state_of_one(isolated: Settings) -> None:
    events = log(seed=11)
    learned, held_out = events[:-HELD_OUT], events[-HELD_OUT:]
    users = sorted({e.user_id for e in learned} | {e.previous_user_id or "" for e in learned})
    users.remove("")
    logins = [e for e in learned if e.event_type == "login"]
    crossing = [
        e
        for e in logins
        if partition_of(e) != zlib.crc32((e.previous_user_id or "").encode()) % PARTITIONS
    ]
    assert len(crossing) > 10, "the log must have logins across partitions"

    one = isolated.model_copy(update={"key_prefix": f"{isolated.key_prefix}-one"})
    two = isolated.model_copy(update={"key_prefix": f"{isolated.key_prefix}-two"})
    keys_one, keys_two = Keys(one.key_prefix), Keys(two.key_prefix)
    store = connect(isolated)
    try:
        await run_worker(store, keys_one, PersonalHandler(one, keys_one), messages(learned, None))
        workers = [PersonalHandler(two, keys_two) for _ in range(PARTITIONS)]
        await asyncio.gather(
            *(
                run_worker(store, keys_two, worker, messages(learned, p))
                for p, worker in enumerate(workers)
            )
        )

        # Histories, aliases and merged ids: exactly the single worker's.
        single = await user_state(store, keys_one, users)
        split = await user_state(store, keys_two, users)
        for user in users:
            assert split[user] == single[user], (user, split[user], single[user])
        moved = [e.previous_user_id for e in crossing]
        assert all(single[anon][1] is not None and single[anon][0] is None for anon in moved)

        # Counters are increments: equal up to the order of float additions.
        for name in ("click", "conversion"):
            a = await hashes(store, keys_one.popularity(name))
            b = await hashes(store, keys_two.popularity(name))
            assert a.keys() == b.keys() and all(math.isclose(a[k], b[k]) for k in a)

        # Item factors: every item's row exists once, with the index and the same item set.
        rows_one = await store.hgetall(keys_one.mf_items())
        rows_two = await store.hgetall(keys_two.mf_items())
        assert rows_one.keys() == rows_two.keys()
        engine_one = await loaded_engine(one, store, keys_one, users)
        engine_two = await loaded_engine(two, store, keys_two, users)
        items = sorted(engine_one.model.item_ids)
        a, b = item_matrix(engine_one, items), item_matrix(engine_two, items)
        # Hogwild-style SGD: the two runs take the same steps on slightly different
        # (stale by at most one batch) vectors and sample negatives from differently
        # ordered item lists, so factors differ: measured 0.63-0.73 of their norm, where a
        # single worker with another mf_seed differs by 1.42 (unrelated vectors: sqrt 2) ...
        relative = float(np.linalg.norm(a - b) / np.linalg.norm(a))
        hr_one, hr_two = hit_rate(engine_one, held_out), hit_rate(engine_two, held_out)
        print(f"relative factor difference {relative:.3f}; HR@10 {hr_one:.3f} vs {hr_two:.3f}")
        assert relative < 1.0, relative
        # ... and they recommend as well on the held-out events: measured 0.353-0.380
        # against 0.383, where single workers with mf_seed 42, 43, 44 score 0.383, 0.372
        # and 0.365.
        assert abs(hr_one - hr_two) <= 0.05, (hr_one, hr_two)
    finally:
        await store.close()
