"""Several personal workers on one store: item rows add up, logins across partitions are
exact (docs/architecture.md, "Exactly-once effects")."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest

from pipeline.features.personal.agent import PersonalHandler
from pipeline.store.base import Reads, Writes
from pipeline.store.memory import MemoryStore
from pipeline.stream.batch import RawMessage, process_batch
from pipeline.stream.fence import Position
from tests.unit.features.helpers import KEYS, T0_MS, run, settings, store_at

pytestmark = pytest.mark.asyncio


def ev(n: int, event_type: str, user: str, item: str | None = None, **fields: object) -> dict:
    body = {"event_id": f"e{n}", "type": event_type, "user_id": user, "timestamp": T0_MS + n * 1000}
    if item is not None:
        body["item_id"] = item
    return {**body, **fields}


async def history(store: MemoryStore, user: str) -> list[str] | None:
    stored = await store.get(KEYS.user_history(user))
    return None if stored is None else [entry[0] for entry in orjson.loads(stored)["recent"]]


# Worker "a" owns the anonymous id's partition, worker "u" the user's.
STEPS: list[tuple[str, list[dict[str, Any]]]] = [
    ("a", [ev(1, "click", "anon-1", "a"), ev(2, "click", "anon-1", "b")]),
    ("u", [ev(3, "click", "u9", "c")]),
    ("u", [ev(4, "login", "u9", previous_user_id="anon-1")]),
    # A late event of the anonymous id, on the worker that cached it before the login.
    ("a", [ev(5, "click", "anon-1", "d")]),
    ("u", [ev(6, "click", "u9", "e")]),
]


async def test_logins_across_workers_end_as_on_one_worker() -> None:
    one = store_at(T0_MS)
    single = PersonalHandler(settings(), KEYS)
    for _, events in STEPS:
        await run(single, one, events)
    split = store_at(T0_MS)
    workers = {"a": PersonalHandler(settings(), KEYS), "u": PersonalHandler(settings(), KEYS)}
    for name, events in STEPS:
        await run(workers[name], split, events)

    assert await history(one, "u9") == ["a", "b", "c", "d", "e"]
    assert await history(split, "u9") == await history(one, "u9")
    # The anonymous id's own state went with the login and did not come back.
    assert await history(split, "anon-1") is None
    assert await split.get(KEYS.user_factors("anon-1")) is None
    assert await split.get(KEYS.user_alias("anon-1")) == b"u9"


async def test_item_rows_add_up_what_each_worker_learned() -> None:
    store = store_at(T0_MS)
    first, second = PersonalHandler(settings(), KEYS), PersonalHandler(settings(), KEYS)
    await run(first, store, [ev(1, "click", "u1", "a"), ev(2, "click", "u1", "b")])
    await run(second, store, [ev(3, "click", "u2", "a"), ev(4, "click", "u2", "b")])
    # The second worker read the first's rows before learning: the store holds both steps,
    # which equals the second worker's memory.
    rows = await store.hgetall(KEYS.mf_items())
    assert rows[b"a"] == second.engine.model.item_row("a")
    alone_store = store_at(T0_MS)
    alone = PersonalHandler(settings(), KEYS)
    await run(alone, alone_store, [ev(3, "click", "u2", "a"), ev(4, "click", "u2", "b")])
    assert rows[b"a"] != alone.engine.model.item_row("a")
    # The first worker reads them again before its next batch of those items.
    await run(first, store, [ev(5, "click", "u1", "a")])
    model = first.engine.model
    stored = np.frombuffer((await store.hgetall(KEYS.mf_items()))[b"a"], "<f4")
    np.testing.assert_array_equal(stored[2:], model.item_factors[model.item_index["a"]])
    # So are the popularity counts of the batch's items.
    clicks = await store.hgetall(KEYS.popularity("click"))
    assert first.engine.cooc.popularity["click"]["a"] == float(clicks[b"a"]) == 3.0


class WritesAfterRead(MemoryStore):
    """Applies another worker's writes right after the first read of ``key``: a commit that
    lands between this worker's read and its transaction."""

    def __init__(self, key: str) -> None:
        super().__init__(clock=lambda: T0_MS / 1000)
        self.key = key
        self.pending: Writes | None = None

    async def read(self, reads: Reads) -> list[Any]:
        answers = await super().read(reads)
        if self.pending is not None and any(self.key in op for op in reads.ops):
            pending, self.pending = self.pending, None
            await self.apply(pending)
        return answers


async def no_dead_letters(records: list) -> None:
    raise AssertionError(records)


async def test_a_merge_that_raced_a_write_of_the_anonymous_id_starts_again() -> None:
    store = WritesAfterRead(KEYS.user_history("anon-1"))
    anonymous, user = PersonalHandler(settings(), KEYS), PersonalHandler(settings(), KEYS)
    await run(anonymous, store, [ev(1, "click", "anon-1", "a")])
    # The anonymous id's worker plans its next event; it commits while the user's worker
    # merges at login, after that worker read the anonymous id.
    records = [anonymous.decode(orjson.dumps(ev(2, "click", "anon-1", "b")))[0][0]]
    store.pending = await anonymous.plan(store, records)
    login = orjson.dumps(ev(3, "login", "u9", previous_user_id="anon-1"))
    message = RawMessage(Position("events", 0, 0), b"u9", login)
    assert await process_batch(store, KEYS, user, [message], no_dead_letters) == 1
    assert await history(store, "u9") == ["a", "b"]
    assert await history(store, "anon-1") is None


async def test_a_worker_holding_every_partition_skips_the_guards_and_ends_the_same() -> None:
    """The usual single worker: told after a rebalance that it holds every partition, it
    stops re-reading and watching what only other workers could write, with the same
    result as a worker that keeps the guards."""
    log = [events for _, events in STEPS]
    guarded_store, alone_store = store_at(T0_MS), store_at(T0_MS)
    guarded, alone = PersonalHandler(settings(), KEYS), PersonalHandler(settings(), KEYS)
    alone.owns_every_partition(True)
    reads = []

    class Counting(MemoryStore):
        async def read(self, reads_: Reads) -> list[Any]:
            reads.append(len(reads_.ops))
            return await super().read(reads_)

    counted = Counting(clock=lambda: T0_MS / 1000)
    for events in log:
        await run(guarded, guarded_store, events)
        await run(alone, alone_store, events)
    for events in log:
        await run(PersonalHandler(settings(), KEYS), counted, events)
    guarded_reads = len(reads)
    reads.clear()
    quiet = PersonalHandler(settings(), KEYS)
    quiet.owns_every_partition(True)
    counted = Counting(clock=lambda: T0_MS / 1000)
    for events in log:
        await run(quiet, counted, events)
    assert len(reads) < guarded_reads
    for user in ("u9", "anon-1"):
        assert await history(alone_store, user) == await history(guarded_store, user)
        assert await alone_store.get(KEYS.user_factors(user)) == await guarded_store.get(
            KEYS.user_factors(user)
        )
    assert await alone_store.hgetall(KEYS.mf_items()) == await guarded_store.hgetall(
        KEYS.mf_items()
    )
