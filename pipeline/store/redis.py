"""The Redis implementation of the store (redis-py asyncio, hiredis when installed).

Batched reads go in one pipelined round trip; writes go in one MULTI/EXEC; the two
multi-member writes (capped sorted-set increments and many-field float increments) are Lua
scripts, so each costs one command instead of one per member.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import (
    BusyLoadingError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisError,
    TryAgainError,
    WatchError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from pipeline.core.settings import Settings
from pipeline.store.base import Build, Op, Reads, Store, StoreError, TransactionConflict, Writes

# Adds many increments to one sorted set, trims it to the ``keep`` highest once it holds more
# than ``trim_above`` members, and sets its expiry (0: none), in one command.
ZINCR_TRIM = """
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

# HINCRBYFLOAT of many fields in one command. A separate HINCRBYFLOAT per field costs the
# client a command and a reply each (~10 us in redis-py): tens of thousands per batch.
HINCRBYFLOAT_MANY = """
for i = 1, #ARGV, 2 do
  redis.call('HINCRBYFLOAT', KEYS[1], ARGV[i], ARGV[i + 1])
end
return 0
"""
# Fields per script call: bounds the size of one command (the MULTI still applies them all).
WRITE_CHUNK = 4096

# Redis trouble that waiting cures: outages, failovers (READONLY), loading, memory pressure.
REDIS_TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    BusyLoadingError,
    ReadOnlyError,
    OutOfMemoryError,
    TryAgainError,
    TransactionConflict,
    OSError,
)

# Reads whose list argument may be empty: Redis refuses the command, the answer is [].
_LIST_READS = {"mget": 1, "hmget": 2, "zmscore": 2}


def _queue_read(client: Any, op: Op) -> Any:
    """Call the redis-py method of one read on ``client`` (a client or a pipeline)."""
    name = op[0]
    if name == "get":
        return client.get(op[1])
    if name == "mget":
        return client.mget(op[1])
    if name == "hget":
        return client.hget(op[1], op[2])
    if name == "hmget":
        return client.hmget(op[1], op[2])
    if name == "hgetall":
        return client.hgetall(op[1])
    if name == "zrange":
        _, key, start, stop, desc = op
        return client.zrange(key, start, stop, desc=desc, withscores=True)
    if name == "zrange_by_score":
        _, key, low, high, desc, offset, count = op
        limit: dict[str, Any] = {}
        if offset or count is not None:
            limit = {"start": offset, "num": -1 if count is None else count}
        if desc:
            return client.zrevrangebyscore(key, high, low, withscores=True, **limit)
        return client.zrangebyscore(key, low, high, withscores=True, **limit)
    if name == "zmscore":
        return client.zmscore(op[1], op[2])
    if name == "smembers":
        return client.smembers(op[1])
    if name == "expire_time":
        return client.execute_command("EXPIRETIME", op[1])
    raise ValueError(f"unknown read {name!r}")


def _number(amount: float) -> str:
    # repr round-trips a float64 exactly.
    return repr(float(amount))


def queue_writes(pipe: Any, writes: Writes) -> None:
    """Queue every write of ``writes`` on a redis-py pipeline (already in MULTI)."""
    for op in writes.ops:
        name = op[0]
        if name == "set":
            _, key, value, ttl_s = op
            pipe.set(key, value, ex=ttl_s or None)
        elif name == "delete":
            pipe.delete(*op[1])
        elif name == "hset":
            pipe.hset(op[1], mapping=op[2])
        elif name == "zadd":
            pipe.zadd(op[1], op[2])
        elif name == "sadd":
            pipe.sadd(op[1], *op[2])
        elif name == "expire_at":
            pipe.expireat(op[1], op[2])
        elif name == "zrem_by_score":
            pipe.zremrangebyscore(op[1], op[2], op[3])
        elif name == "zincr_trim":
            _, key, increments, keep, trim_above, expire_at_s = op
            args: list[object] = [keep, trim_above, expire_at_s]
            for member, amount in increments.items():
                args.append(member)
                args.append(_number(amount))
            pipe.eval(ZINCR_TRIM, 1, key, *args)
        elif name == "hincr_float":
            _, key, increments = op
            fields: list[object] = []
            for field, amount in increments.items():
                fields.append(field)
                fields.append(_number(amount))
                if len(fields) >= 2 * WRITE_CHUNK:
                    pipe.eval(HINCRBYFLOAT_MANY, 1, key, *fields)
                    fields = []
            if fields:
                pipe.eval(HINCRBYFLOAT_MANY, 1, key, *fields)
        else:
            raise ValueError(f"unknown write {name!r}")


class RedisStore(Store):
    """The store on a redis-py asyncio client (which owns a connection pool)."""

    transient_errors = REDIS_TRANSIENT_ERRORS

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis

    async def read(self, reads: Reads) -> list[Any]:
        ops = reads.ops
        sent = [op for op in ops if not _empty_list_read(op)]
        if len(sent) == 1 and len(ops) == 1:
            return [await _queue_read(self.redis, sent[0])]
        answers: list[Any] = []
        if sent:
            async with self.redis.pipeline(transaction=False) as pipe:
                for op in sent:
                    _queue_read(pipe, op)
                answers = await pipe.execute()
        replies = iter(answers)
        return [[] if _empty_list_read(op) else next(replies) for op in ops]

    async def apply(self, writes: Writes) -> None:
        if not writes.ops:
            return
        async with self.redis.pipeline(transaction=True) as pipe:
            queue_writes(pipe, writes)
            await pipe.execute()

    async def transact(self, watch: Sequence[str], build: Build, attempts: int = 5) -> bool:
        for _ in range(attempts):
            async with self.redis.pipeline(transaction=True) as pipe:
                try:
                    values: list[bytes | None] = []
                    if watch:
                        await pipe.watch(*watch)
                        # The client does not decode responses: values are bytes.
                        values = cast(list[bytes | None], await pipe.mget(list(watch)))
                    writes = await build(values)
                    if writes is None:
                        await pipe.unwatch()
                        return False
                    pipe.multi()
                    queue_writes(pipe, writes)
                    await pipe.execute()
                    return True
                except WatchError:
                    continue
        raise TransactionConflict(f"keys {list(watch)} kept changing during {attempts} attempts")

    async def scan(self, pattern: str) -> list[str]:
        return [key.decode() async for key in self.redis.scan_iter(match=pattern, count=1000)]

    async def ping(self) -> None:
        try:
            await self.redis.ping()
        except self.transient_errors:
            raise
        except RedisError as exc:  # e.g. NOAUTH
            raise StoreError(str(exc)) from exc

    async def close(self) -> None:
        await self.redis.aclose()


def _empty_list_read(op: Op) -> bool:
    position = _LIST_READS.get(op[0])
    return position is not None and not op[position]


def connect(settings: Settings, timeout_s: float | None = None) -> RedisStore:
    """A store on ``settings.redis_url``; ``timeout_s`` bounds connects and reads (the HTTP
    services). Nothing connects until the first command."""
    return RedisStore(
        aioredis.Redis.from_url(
            settings.redis_url,
            socket_connect_timeout=timeout_s,
            socket_timeout=timeout_s,
            health_check_interval=30,
        )
    )
