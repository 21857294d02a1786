"""Redis access: connections, and the fenced transaction that makes effects exactly-once.

An agent applies each batch as one MULTI/EXEC that also records, per (topic, partition),
the last Kafka offset it covers. Messages at or below that fence are skipped on replay, so a
crash at any moment neither loses nor doubles an update (DESIGN.md, state and correctness).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import WatchError

from pipeline.keys import fence_field
from pipeline.settings import Settings


def connect(settings: Settings, timeout_s: float | None = None) -> aioredis.Redis:
    """An asyncio Redis client. ``timeout_s`` bounds connects and reads (HTTP services)."""
    return aioredis.Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=timeout_s,
        socket_timeout=timeout_s,
        health_check_interval=30,
    )


@dataclass(frozen=True, slots=True)
class Position:
    """Where a message came from."""

    topic: str
    partition: int
    offset: int

    @property
    def field(self) -> str:
        return fence_field(self.topic, self.partition)


Pipeline = aioredis.client.Pipeline
# Called with the transaction pipeline (already in MULTI) and the fresh positions' indexes.
QueueWrites = Callable[[Pipeline, list[int]], None]
# Called with the indexes of fresh messages before the transaction; reads, sends dead letters.
Prepare = Callable[[list[int]], Awaitable[QueueWrites]]


# Adds many increments to one sorted set, trims it to the ``keep`` highest once it holds more
# than ``trim_above`` members, and sets its expiry (0: none), in one command: one round trip
# per key instead of one per (key, member).
_ZINCR_TRIM = """
for i = 4, #ARGV, 2 do
  redis.call('ZINCRBY', KEYS[1], ARGV[i + 1], ARGV[i])
end
if redis.call('ZCARD', KEYS[1]) > tonumber(ARGV[2]) then
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(tonumber(ARGV[1]) + 1))
end
if tonumber(ARGV[3]) > 0 then
  redis.call('EXPIREAT', KEYS[1], ARGV[3])
end
return 0
"""


def queue_zincr_trim(
    pipe: Pipeline,
    key: str,
    increments: Mapping[str, float],
    keep: int,
    trim_above: int | None = None,
    expire_at_s: int = 0,
) -> None:
    """Queue: add ``increments`` to sorted set ``key``, cap it at ``keep`` members.

    ``trim_above`` (default ``keep``) lets the set grow past ``keep`` before trimming, which
    amortises the trim. Members removed by a trim are the lowest scores, ties by member.
    """
    args: list[object] = [keep, trim_above if trim_above is not None else keep, expire_at_s]
    for member, amount in increments.items():
        args.append(member)
        args.append(repr(float(amount)))
    pipe.eval(_ZINCR_TRIM, 1, key, *args)


class FenceConflict(RuntimeError):
    """Another writer advanced a fence this batch covers (e.g. during a rebalance)."""


async def read_fences(
    redis: aioredis.Redis, fence_key: str, fields: Sequence[str]
) -> dict[str, int]:
    values = await redis.hmget(fence_key, list(fields))
    return {
        name: int(value) if value is not None else -1
        for name, value in zip(fields, values, strict=True)
    }


def fresh_indexes(positions: Sequence[Position], fences: Mapping[str, int]) -> list[int]:
    """Indexes of messages past their partition's fence (not yet applied)."""
    return [i for i, pos in enumerate(positions) if pos.offset > fences.get(pos.field, -1)]


def batch_high_marks(positions: Sequence[Position]) -> dict[str, int]:
    marks: dict[str, int] = {}
    for pos in positions:
        if pos.offset > marks.get(pos.field, -1):
            marks[pos.field] = pos.offset
    return marks


async def apply_fenced(
    redis: aioredis.Redis,
    fence_key: str,
    positions: Sequence[Position],
    prepare: Prepare,
    attempts: int = 5,
) -> int:
    """Apply a batch once: skip messages at or below their fence, write the rest atomically.

    ``prepare`` receives the indexes of fresh messages, may do reads and side effects that
    tolerate repetition (dead letters), and returns a function that queues the writes into
    the transaction. The fence update is queued in the same MULTI/EXEC, guarded by WATCH on
    the fence key. Returns the number of fresh messages applied (0 on a full replay).
    """
    if not positions:
        return 0
    marks = batch_high_marks(positions)
    fields = sorted(marks)
    for _ in range(attempts):
        async with redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(fence_key)
                values = await pipe.hmget(fence_key, fields)
                fences = {
                    name: int(value) if value is not None else -1
                    for name, value in zip(fields, values, strict=True)
                }
                fresh = fresh_indexes(positions, fences)
                if not fresh:
                    await pipe.unwatch()
                    return 0
                queue_writes = await prepare(fresh)
                pipe.multi()
                queue_writes(pipe, fresh)
                advanced = {name: mark for name, mark in marks.items() if mark > fences[name]}
                pipe.hset(fence_key, mapping=advanced)
                await pipe.execute()
                return len(fresh)
            except WatchError:
                continue
    raise FenceConflict(f"fence {fence_key} kept moving during {attempts} attempts")
