"""The fenced transaction against a real Redis: applied once, retried on conflict, and a
handler told when its plan did not commit."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from pipeline.core.events import Rejection
from pipeline.core.keys import Keys
from pipeline.core.settings import Settings
from pipeline.store.base import Store, Writes
from pipeline.store.redis import RedisStore
from pipeline.stream.batch import RawMessage, process_batch
from pipeline.stream.fence import Applied, Position, applied_offsets, apply_fenced
from pipeline.stream.handler import Handler

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]


@pytest_asyncio.fixture
async def store(isolated: Settings) -> AsyncIterator[RedisStore]:
    store = RedisStore(aioredis.Redis.from_url(isolated.redis_url))
    yield store
    await store.close()


def positions(topic: str, partition: int, offsets: range) -> list[Position]:
    return [Position(topic, partition, offset) for offset in offsets]


async def test_a_batch_applies_once_and_a_replay_is_skipped(isolated: Settings, store):
    keys = Keys(isolated.key_prefix)
    batch = positions("t", 0, range(5)) + positions("t", 1, range(3))
    calls: list[list[int]] = []
    counter = f"{isolated.key_prefix}:counter"

    async def prepare(fresh: list[int]) -> Writes:
        calls.append(fresh)
        # An increment (as INCRBY was): a second application would show in the count.
        return Writes().hincr_float(counter, {"n": len(fresh)})

    assert await apply_fenced(store, keys, "agent", batch, prepare) == Applied(8, True, True)
    assert await apply_fenced(store, keys, "agent", batch, prepare) == Applied(0, False, False)
    assert calls == [list(range(8))]
    assert int(float(await store.hget(counter, "n"))) == 8
    assert await applied_offsets(store, keys, "agent") == {"t:0": 4, "t:1": 2}


async def test_a_concurrent_fence_move_retries_with_only_the_fresh_rest(isolated: Settings, store):
    keys = Keys(isolated.key_prefix)
    batch = positions("t", 0, range(10))
    calls: list[list[int]] = []
    applied_key = f"{isolated.key_prefix}:applied"

    async def prepare(fresh: list[int]) -> Writes:
        calls.append(fresh)
        if len(calls) == 1:
            # Another worker (say, during a rebalance) applies offsets 0-5 meanwhile.
            await store.apply(Writes().set(keys.fence("agent", "t", 0), 5))
        # Counts each offset written (as RPUSH listed them): a doubled one would count 2.
        return Writes().hincr_float(applied_key, {offset: 1 for offset in fresh})

    outcome = await apply_fenced(store, keys, "agent", batch, prepare)
    assert outcome == Applied(4, True, True)
    assert calls == [list(range(10)), [6, 7, 8, 9]]
    counts = {int(f): round(float(n)) for f, n in (await store.hgetall(applied_key)).items()}
    applied = [offset for offset, n in sorted(counts.items()) for _ in range(n)]
    assert applied == [6, 7, 8, 9]


async def test_another_partitions_fence_does_not_abort_this_batch(isolated: Settings, store):
    keys = Keys(isolated.key_prefix)
    calls = 0

    async def prepare(fresh: list[int]) -> Writes:
        nonlocal calls
        calls += 1
        # A partition this batch lacks.
        await store.apply(Writes().set(keys.fence("agent", "t", 1), 99))
        return Writes()

    assert await apply_fenced(
        store, keys, "agent", positions("t", 0, range(3)), prepare
    ) == Applied(3, True, True)
    assert calls == 1


class RecordingHandler(Handler[bytes | None]):
    name = "recording"

    def __init__(self, store: Store, keys: Keys) -> None:
        self.store, self.keys = store, keys
        self.events: list[str] = []

    def decode(self, value: bytes | None) -> tuple[list[bytes | None], list[Rejection]]:
        return [value], []

    async def plan(self, store: Store, records: list[bytes | None]) -> Writes:
        self.events.append("plan")
        # Another worker applies the whole batch before this one commits.
        await self.store.apply(Writes().set(self.keys.fence(self.name, "t", 0), 100))
        return Writes()

    def committed(self) -> None:
        self.events.append("committed")

    def aborted(self) -> None:
        self.events.append("aborted")


async def test_a_handler_is_told_when_its_plan_never_committed(isolated: Settings, store):
    keys = Keys(isolated.key_prefix)
    handler = RecordingHandler(store, keys)
    messages = [RawMessage(Position("t", 0, i), None, b"x") for i in range(3)]

    async def no_dead_letters(records: list) -> None:
        raise AssertionError(records)

    assert await process_batch(store, keys, handler, messages, no_dead_letters) == 0
    assert handler.events == ["plan", "aborted"]
