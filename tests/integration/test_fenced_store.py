"""The fenced transaction against a real Redis: applied once, retried on conflict, and a
handler told when its plan did not commit."""

from __future__ import annotations

import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from pipeline.events import Rejection
from pipeline.keys import Keys
from pipeline.settings import Settings
from pipeline.store import Applied, Position, applied_offsets, apply_fenced
from pipeline.streaming import RawMessage, process_batch

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]


@pytest_asyncio.fixture
async def redis(isolated: Settings):
    client = aioredis.Redis.from_url(isolated.redis_url)
    yield client
    await client.aclose()


def positions(topic: str, partition: int, offsets: range) -> list[Position]:
    return [Position(topic, partition, offset) for offset in offsets]


async def test_a_batch_applies_once_and_a_replay_is_skipped(isolated: Settings, redis):
    keys = Keys(isolated.key_prefix)
    batch = positions("t", 0, range(5)) + positions("t", 1, range(3))
    calls: list[list[int]] = []

    async def prepare(fresh: list[int]):
        calls.append(fresh)
        return lambda pipe: pipe.incrby(f"{isolated.key_prefix}:counter", len(fresh))

    assert await apply_fenced(redis, keys, "agent", batch, prepare) == Applied(8, True, True)
    assert await apply_fenced(redis, keys, "agent", batch, prepare) == Applied(0, False, False)
    assert calls == [list(range(8))]
    assert int(await redis.get(f"{isolated.key_prefix}:counter")) == 8
    assert await applied_offsets(redis, keys, "agent") == {"t:0": 4, "t:1": 2}


async def test_a_concurrent_fence_move_retries_with_only_the_fresh_rest(isolated: Settings, redis):
    keys = Keys(isolated.key_prefix)
    batch = positions("t", 0, range(10))
    calls: list[list[int]] = []

    async def prepare(fresh: list[int]):
        calls.append(fresh)
        if len(calls) == 1:
            # Another worker (say, during a rebalance) applies offsets 0-5 meanwhile.
            await redis.set(keys.fence("agent", "t", 0), 5)
        return lambda pipe: pipe.rpush(f"{isolated.key_prefix}:applied", *fresh)

    outcome = await apply_fenced(redis, keys, "agent", batch, prepare)
    assert outcome == Applied(4, True, True)
    assert calls == [list(range(10)), [6, 7, 8, 9]]
    applied = [int(v) for v in await redis.lrange(f"{isolated.key_prefix}:applied", 0, -1)]
    assert applied == [6, 7, 8, 9]


async def test_another_partitions_fence_does_not_abort_this_batch(isolated: Settings, redis):
    keys = Keys(isolated.key_prefix)
    calls = 0

    async def prepare(fresh: list[int]):
        nonlocal calls
        calls += 1
        await redis.set(keys.fence("agent", "t", 1), 99)  # a partition this batch lacks
        return lambda pipe: None

    assert await apply_fenced(
        redis, keys, "agent", positions("t", 0, range(3)), prepare
    ) == Applied(3, True, True)
    assert calls == 1


class RecordingHandler:
    name = "recording"

    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self.redis, self.keys = redis, keys
        self.events: list[str] = []

    def decode(self, value: bytes | None) -> tuple[list, list[Rejection]]:
        return [value], []

    async def plan(self, redis, records):
        self.events.append("plan")
        # Another worker applies the whole batch before this one commits.
        await self.redis.set(self.keys.fence(self.name, "t", 0), 100)
        return lambda pipe: None

    def committed(self) -> None:
        self.events.append("committed")

    def aborted(self) -> None:
        self.events.append("aborted")


async def test_a_handler_is_told_when_its_plan_never_committed(isolated: Settings, redis):
    keys = Keys(isolated.key_prefix)
    handler = RecordingHandler(redis, keys)
    messages = [RawMessage(Position("t", 0, i), None, b"x") for i in range(3)]

    async def no_dead_letters(records: list) -> None:
        raise AssertionError(records)

    assert await process_batch(redis, keys, handler, messages, no_dead_letters) == 0
    assert handler.events == ["plan", "aborted"]
