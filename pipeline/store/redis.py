"""The Redis implementation of the store (redis-py asyncio, hiredis when installed).

Batched reads go in one pipelined round trip; writes go in one MULTI/EXEC, where runs of
writes of one kind go as Lua scripts, each a single command for many keys.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import Any, cast

import hiredis
import redis.asyncio as aioredis
from redis.exceptions import (
    AuthenticationError,
    AuthorizationError,
    BusyLoadingError,
    DataError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisError,
    TryAgainError,
    WatchError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from pipeline.core.settings import Settings
from pipeline.store.base import (
    Build,
    Op,
    Reads,
    Scalar,
    Store,
    StoreError,
    TransactionConflict,
    Writes,
)
from pipeline.store.redis_scripts import READ_SCRIPTS, SCRIPTED, WRITE_CHUNK
from pipeline.store.redis_writes import queue_eval, queue_plain, run_args

# The pipeline of the transaction whose ``build`` is running in this task (Store.watch).
_WATCHING: ContextVar[Any] = ContextVar("watching", default=None)

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
# Subclasses of those that waiting never cures: a wrong password, a refused certificate.
REDIS_PERMANENT_ERRORS = (AuthenticationError, AuthorizationError, ssl.SSLCertVerificationError)

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
    # Sorted-set ranges go as plain commands: redis-py's RESP3 shim would format every score
    # to text and parse it again; _scored makes the pairs (see _answer).
    if name == "zrange":
        _, key, start, stop, desc = op
        return client.execute_command(
            "ZRANGE", key, start, stop, *(("REV",) if desc else ()), "WITHSCORES"
        )
    if name == "zrange_by_score":
        _, key, low, high, desc, offset, count = op
        limit: tuple[Any, ...] = ()
        if offset or count is not None:
            limit = ("LIMIT", offset, -1 if count is None else count)
        if desc:
            return client.execute_command("ZREVRANGEBYSCORE", key, high, low, "WITHSCORES", *limit)
        return client.execute_command("ZRANGEBYSCORE", key, low, high, "WITHSCORES", *limit)
    if name == "zmscore":
        return client.zmscore(op[1], op[2])
    if name == "smembers":
        return client.smembers(op[1])
    if name == "expire_time":
        return client.execute_command("EXPIRETIME", op[1])
    raise ValueError(f"unknown read {name!r}")


def _answer(op: Op, reply: Any) -> Any:
    """A read's reply in the shape :class:`Reads` documents."""
    name = op[0]
    if name in ("zrange", "zrange_by_score"):
        return _scored(reply)
    if name == "related_blend":
        return _related_rows(reply)
    return reply


def _scored(reply: list[Any]) -> list[tuple[bytes, float]]:
    """A WITHSCORES reply as (member, score) pairs: RESP3's [member, score] pairs, or
    RESP2's flat member, score-as-text list."""
    if reply and isinstance(reply[0], list):
        return [(member, float(score)) for member, score in reply]
    return [(reply[i], float(reply[i + 1])) for i in range(0, len(reply), 2)]


def _related_rows(reply: list[bytes]) -> list[tuple[str, float, str]]:
    """The flat (member, score, label) reply of the related-blend script as rows."""
    return [
        (reply[i].decode("utf-8", "replace"), float(reply[i + 1]), reply[i + 2].decode())
        for i in range(0, len(reply), 3)
    ]


class RedisStore(Store):
    """The store on a redis-py asyncio client (which owns a connection pool)."""

    transient_errors, permanent_errors = REDIS_TRANSIENT_ERRORS, REDIS_PERMANENT_ERRORS

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._read_scripts = {
            name: redis.register_script(source) for name, source in READ_SCRIPTS.items()
        }

    async def queue_writes(self, pipe: Any, writes: Writes) -> None:
        """Queue every write on a redis-py pipeline (already in MULTI), in order; each run of
        consecutive scripted writes of one kind goes as few script calls as the chunk allows."""
        run: list[Op] = []
        for op in writes.ops:
            if run and op[0] != run[0][0]:
                self._queue_run(pipe, run)
                run = []
            if op[0] in SCRIPTED:
                run.append(op)
            else:
                queue_plain(pipe, op)
        if run:
            self._queue_run(pipe, run)

    def _queue_run(self, pipe: Any, run: list[Op]) -> None:
        source = SCRIPTED[run[0][0]]
        keys: list[str] = []
        args: list[Scalar] = []
        for op, op_args in zip(run, run_args(run), strict=True):
            if keys and len(args) + len(op_args) > WRITE_CHUNK:
                queue_eval(pipe, source, keys, args)
                keys, args = [], []
            keys.append(op[1])
            args.extend(op_args)
        queue_eval(pipe, source, keys, args)

    async def read(self, reads: Reads) -> list[Any]:
        ops = reads.ops
        sent = [op for op in ops if not _empty_list_read(op)]
        if len(sent) == 1 and len(ops) == 1:
            op = sent[0]
            if op[0] in READ_SCRIPTS:
                return [_answer(op, await self._read_script(self.redis, op))]
            return [_answer(op, await _queue_read(self.redis, op))]
        answers: list[Any] = []
        if sent:
            async with self.redis.pipeline(transaction=False) as pipe:
                for op in sent:
                    if op[0] in READ_SCRIPTS:
                        await self._read_script(pipe, op)
                    else:
                        _queue_read(pipe, op)
                answers = await pipe.execute()
        replies = iter(answers)
        return [[] if _empty_list_read(op) else _answer(op, next(replies)) for op in ops]

    def _read_script(self, client: Any, op: Op) -> Any:
        """Call the script of a scripted read (EVALSHA, loading it when Redis lacks it), or
        queue it on a pipeline (EVAL: see :func:`~pipeline.store.redis_writes.queue_eval`)."""
        _, sets, hidden, exclude, depth, discount, n = op
        keys = [name for zset, weights, _ in sets for name in (zset, weights)] + [hidden]
        args = [depth, float(discount), n, exclude, *(label for _, _, label in sets)]
        if isinstance(client, aioredis.client.Pipeline):
            return queue_eval(client, READ_SCRIPTS[op[0]], keys, args)
        return self._read_scripts[op[0]](keys=keys, args=args, client=client)

    async def apply(self, writes: Writes) -> None:
        if not writes.ops:
            return
        async with self.redis.pipeline(transaction=True) as pipe:
            await self.queue_writes(pipe, writes)
            await pipe.execute()

    async def transact(
        self,
        watch: Sequence[str],
        build: Build,
        attempts: int = 5,
        meanwhile: Callable[[], None] | None = None,
    ) -> bool:
        for _ in range(attempts):
            async with self.redis.pipeline(transaction=True) as pipe:
                try:
                    values: list[bytes | None] = []
                    if watch:
                        await pipe.watch(*watch)
                        # The client does not decode responses: values are bytes.
                        values = cast(list[bytes | None], await pipe.mget(list(watch)))
                    token = _WATCHING.set(pipe)
                    try:
                        writes = await build(values)
                    finally:
                        _WATCHING.reset(token)
                    if writes is None:
                        await pipe.unwatch()
                        return False
                    pipe.multi()
                    await self.queue_writes(pipe, writes)
                    if meanwhile is None:
                        await pipe.execute()
                    else:
                        await _execute_meanwhile(pipe, meanwhile)
                    return True
                except WatchError:
                    continue
        raise TransactionConflict(f"keys {list(watch)} kept changing during {attempts} attempts")

    async def watch(self, keys: Sequence[str]) -> None:
        pipe = _WATCHING.get()
        if pipe is not None and keys:
            await pipe.watch(*keys)

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


async def _execute_meanwhile(pipe: Any, meanwhile: Callable[[], None]) -> None:
    """Execute ``pipe`` and call ``meanwhile`` while Redis runs it (best effort: the first
    step of the execution packs the commands and writes what the socket takes at once).

    The execution always ends before this returns: an error of ``meanwhile`` (or a
    cancellation) waits for it (cancelled too, for a cancellation) and then propagates,
    whatever the transaction's outcome; otherwise its outcome (a WatchError included)
    is the result."""
    sent = asyncio.ensure_future(pipe.execute())
    try:
        # One turn of the loop: the execution packs and writes the commands, then waits.
        await asyncio.sleep(0)
        meanwhile()
    except BaseException as exc:
        if isinstance(exc, asyncio.CancelledError):
            sent.cancel()
        # Settled before the error goes on: the connection is never left to a stray read.
        await asyncio.gather(sent, return_exceptions=True)
        raise
    await sent


def _empty_list_read(op: Op) -> bool:
    position = _LIST_READS.get(op[0])
    return position is not None and not op[position]


class HiredisPackingConnection(aioredis.Connection):
    """A connection that packs commands with hiredis (C) instead of redis-py's asyncio
    packer (Python): several times faster for the long script calls of a batch."""

    def pack_command(self, *args: Any) -> list[bytes]:
        # As redis-py does: a command name given as "A B" is two words. Our arguments are
        # str, bytes, int and float, which hiredis packs as redis-py would.
        head = args[0]
        words = head.encode().split() if isinstance(head, str) else head.split()
        try:
            return [hiredis.pack_command((*words, *args[1:]))]
        except TypeError as exc:
            raise DataError(str(exc)) from exc


def connect(settings: Settings, timeout_s: float | None = None) -> RedisStore:
    """A store on ``settings.redis_url``; ``timeout_s`` bounds connects and reads (the HTTP
    services). Nothing connects until the first command.

    ``rediss://`` URLs connect over TLS, verifying the server against ``redis_ssl_cafile``
    (or the system's trust store) and its host name. ``redis_password`` (and
    ``redis_username``) apply when the URL carries no credentials of its own."""
    return RedisStore(
        aioredis.Redis.from_url(settings.redis_url, **redis_options(settings, timeout_s))
    )


def redis_options(settings: Settings, timeout_s: float | None = None) -> dict[str, Any]:
    """Keyword arguments of ``Redis.from_url`` for ``settings`` (credentials in the URL win
    over these, as redis-py merges them)."""
    options: dict[str, Any] = {
        "socket_connect_timeout": timeout_s,
        "socket_timeout": timeout_s,
        "health_check_interval": 30,
    }
    if settings.redis_url.startswith("redis://"):
        options["connection_class"] = HiredisPackingConnection
    password = settings.redis_password.get_secret_value()
    if password:
        options["password"] = password
        if settings.redis_username:
            options["username"] = settings.redis_username
    if settings.redis_url.startswith("rediss://") and settings.redis_ssl_cafile:
        options["ssl_ca_certs"] = settings.redis_ssl_cafile
    return options
