"""Redis access: connections, and the fenced transaction that makes effects exactly-once.

An agent applies each batch as one MULTI/EXEC that also records, per (topic, partition),
the last Kafka offset it covers. Messages at or below that fence are skipped on replay, so a
crash at any moment neither loses nor doubles an update (DESIGN.md, state and correctness).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import WatchError

from pipeline.keys import Keys
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


Pipeline = aioredis.client.Pipeline
# Called with the transaction pipeline (already in MULTI): queues the batch's writes.
QueueWrites = Callable[[Pipeline], None]
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


# HINCRBYFLOAT of many fields in one command. A separate HINCRBYFLOAT per weight costs the
# client a command and a reply each (~10 us in redis-py): tens of thousands per batch.
_HINCRBYFLOAT_MANY = """
for i = 1, #ARGV, 2 do
  redis.call('HINCRBYFLOAT', KEYS[1], ARGV[i], ARGV[i + 1])
end
return 0
"""
# Fields per script call: bounds the size of one command (the MULTI still applies them all).
WRITE_CHUNK = 4096


def queue_hincrbyfloat_many(
    pipe: Pipeline, key: str, increments: Mapping[Any, float], chunk: int = WRITE_CHUNK
) -> None:
    """Queue ``HINCRBYFLOAT key field amount`` for every item of ``increments``.

    Increments are sent as ``repr(float)``, which round-trips a float64 exactly.
    """
    args: list[object] = []
    for field, amount in increments.items():
        args.append(field)
        args.append(repr(float(amount)))
        if len(args) >= 2 * chunk:
            pipe.eval(_HINCRBYFLOAT_MANY, 1, key, *args)
            args = []
    if args:
        pipe.eval(_HINCRBYFLOAT_MANY, 1, key, *args)


class FenceConflict(RuntimeError):
    """Another writer advanced a fence this batch covers (e.g. during a rebalance)."""


@dataclass(frozen=True, slots=True)
class Applied:
    """Outcome of :func:`apply_fenced`.

    ``fresh``: messages past their fence. ``planned``: ``prepare`` ran at least once.
    ``executed``: the last plan's writes were committed. ``planned and not executed`` means
    a handler may hold in-memory effects that Redis does not have.
    """

    fresh: int
    planned: bool
    executed: bool


def batch_high_marks(positions: Sequence[Position]) -> dict[tuple[str, int], int]:
    """The highest offset of each (topic, partition) in a batch."""
    marks: dict[tuple[str, int], int] = {}
    for pos in positions:
        key = (pos.topic, pos.partition)
        if pos.offset > marks.get(key, -1):
            marks[key] = pos.offset
    return marks


def fresh_indexes(
    positions: Sequence[Position], fences: Mapping[tuple[str, int], int]
) -> list[int]:
    """Indexes of messages past their partition's fence (not yet applied)."""
    return [
        i
        for i, pos in enumerate(positions)
        if pos.offset > fences.get((pos.topic, pos.partition), -1)
    ]


async def apply_fenced(
    redis: aioredis.Redis,
    keys: Keys,
    agent: str,
    positions: Sequence[Position],
    prepare: Prepare,
    attempts: int = 5,
) -> Applied:
    """Apply a batch once: skip messages at or below their fence, write the rest atomically.

    ``prepare`` receives the indexes of fresh messages, may do reads and side effects that
    tolerate repetition (dead letters), and returns a function that queues the writes into
    the transaction. The fence updates are queued in the same MULTI/EXEC, guarded by WATCH
    on the fence keys of the batch's partitions only.
    """
    if not positions:
        return Applied(0, False, False)
    marks = batch_high_marks(positions)
    partitions = sorted(marks)
    fence_keys = [keys.fence(agent, topic, partition) for topic, partition in partitions]
    planned = False
    for _ in range(attempts):
        async with redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(*fence_keys)
                values = await pipe.mget(fence_keys)
                fences = {
                    tp: int(value) if value is not None else -1
                    for tp, value in zip(partitions, values, strict=True)
                }
                fresh = fresh_indexes(positions, fences)
                if not fresh:
                    await pipe.unwatch()
                    return Applied(0, planned, False)
                queue_writes = await prepare(fresh)
                planned = True
                pipe.multi()
                queue_writes(pipe)
                for tp, key in zip(partitions, fence_keys, strict=True):
                    if marks[tp] > fences[tp]:
                        pipe.set(key, marks[tp])
                await pipe.execute()
                return Applied(len(fresh), True, True)
            except WatchError:
                continue
    raise FenceConflict(f"fences {fence_keys} kept moving during {attempts} attempts")


async def applied_offsets(redis: aioredis.Redis, keys: Keys, agent: str) -> dict[str, int]:
    """``{topic}:{partition}`` -> last applied offset of an agent group (operations, tests)."""
    prefix = keys.fence_prefix(agent)
    found = [key async for key in redis.scan_iter(match=prefix + "*", count=1000)]
    values = await redis.mget(found) if found else []
    return {
        key.decode()[len(prefix) :]: int(value)
        for key, value in zip(found, values, strict=True)
        if value is not None
    }
