"""The store interface: the reads and writes every feature needs, as plain data.

A feature never talks to Redis directly. Its agent handler *plans* a batch: it reads what it
needs through a :class:`Store` and returns the :class:`Writes` the batch makes; the stream
loop applies them in one atomic transaction together with the offset fences. Its read side
answers HTTP requests with the same :class:`Store` reads. Two implementations behave the
same (one contract suite runs against both, ``tests/unit/store/test_contract.py``):

- :class:`~pipeline.store.redis.RedisStore`, what every process runs;
- :class:`~pipeline.store.memory.MemoryStore`, for unit tests of plans and read functions.

Values read back are ``bytes`` (members and hash values) and ``float`` (scores), as Redis
answers them. Values written may be ``str``, ``bytes``, ``int`` or ``float``; numbers are
written as their ``repr``, which round-trips a float exactly.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

Scalar = str | bytes | int | float
# A sorted-set bound: a number, "-inf", "+inf", or "(x" for an exclusive bound.
Bound = float | str
Op = tuple[Any, ...]


class Reads:
    """Reads sent in one round trip: ``answers = await store.read(reads)``, one per read, in
    order. Each method queues one read and returns the builder, so calls chain."""

    __slots__ = ("ops",)

    def __init__(self) -> None:
        self.ops: list[Op] = []

    def __len__(self) -> int:
        return len(self.ops)

    def _add(self, *op: Any) -> Reads:
        self.ops.append(op)
        return self

    def get(self, key: str) -> Reads:
        """Answer: the string's bytes, or None."""
        return self._add("get", key)

    def mget(self, keys: Sequence[str]) -> Reads:
        """Answer: a list of bytes or None, one per key."""
        return self._add("mget", list(keys))

    def hget(self, key: str, field: str) -> Reads:
        """Answer: the field's bytes, or None."""
        return self._add("hget", key, field)

    def hmget(self, key: str, fields: Sequence[Any]) -> Reads:
        """Answer: a list of bytes or None, one per field."""
        return self._add("hmget", key, list(fields))

    def hgetall(self, key: str) -> Reads:
        """Answer: ``{field bytes: value bytes}`` (empty when the key is missing)."""
        return self._add("hgetall", key)

    def zrange(self, key: str, start: int, stop: int, desc: bool = False) -> Reads:
        """Answer: ``[(member, score)]`` by rank, ``stop`` inclusive, negative from the end;
        ``desc`` ranks from the highest score. Ties order by member bytes (reversed with desc)."""
        return self._add("zrange", key, start, stop, desc)

    def zrange_by_score(
        self,
        key: str,
        low: Bound,
        high: Bound,
        desc: bool = False,
        offset: int = 0,
        count: int | None = None,
    ) -> Reads:
        """Answer: ``[(member, score)]`` with ``low <= score <= high`` ("(x" excludes x), ordered
        as :meth:`zrange`, skipping ``offset`` and returning at most ``count``."""
        return self._add("zrange_by_score", key, low, high, desc, offset, count)

    def zmscore(self, key: str, members: Sequence[str]) -> Reads:
        """Answer: a list of scores or None, one per member."""
        return self._add("zmscore", key, list(members))

    def smembers(self, key: str) -> Reads:
        """Answer: the set of member bytes."""
        return self._add("smembers", key)

    def expire_time(self, key: str) -> Reads:
        """Answer: the key's expiry in epoch seconds; -1 without one; -2 when it is missing."""
        return self._add("expire_time", key)

    def related_blend(
        self,
        sets: Sequence[tuple[str, str, str]],
        hidden: str,
        exclude: str,
        depth: int,
        discount: float,
        n: int,
    ) -> Reads:
        """Answer: ``[(member, score, label)]``, the ``n`` best of the related-items rule
        (:mod:`pipeline.core.blend`) applied where the data is. ``sets`` holds (sorted set,
        weights hash, label) triples: the ``depth`` highest members of each set, less
        ``exclude`` and the members of the set ``hidden``, scored ``score / (weight + 1) **
        discount`` (a member's weight from the hash, 0 when absent) and ranked
        (``rank_related``), then blended (``blend_related``). One reply of ``n`` rows instead
        of every member and weight. Members are decoded as UTF-8 (invalid bytes replaced)."""
        return self._add("related_blend", tuple(sets), hidden, exclude, depth, discount, n)


class Writes:
    """Writes queued by a plan, applied in order and atomically by the store.

    Every method queues one write and returns the builder. ``expire_at_s`` and ``ttl_s`` of
    0 or None mean no expiry.
    """

    __slots__ = ("ops",)

    def __init__(self) -> None:
        self.ops: list[Op] = []

    def __len__(self) -> int:
        return len(self.ops)

    def _add(self, *op: Any) -> Writes:
        self.ops.append(op)
        return self

    def extend(self, other: Writes) -> Writes:
        self.ops.extend(other.ops)
        return self

    def set(self, key: str, value: Scalar, ttl_s: int | None = None) -> Writes:
        return self._add("set", key, value, ttl_s)

    def delete(self, *keys: str) -> Writes:
        if keys:
            return self._add("delete", keys)
        return self

    def hset(self, key: str, mapping: Mapping[Any, Scalar]) -> Writes:
        if mapping:
            return self._add("hset", key, dict(mapping))
        return self

    def zadd(self, key: str, mapping: Mapping[str, float]) -> Writes:
        if mapping:
            return self._add("zadd", key, dict(mapping))
        return self

    def zadd_expire(self, key: str, mapping: Mapping[str, float], expire_at_s: int) -> Writes:
        """``zadd`` (members get these scores), then the key expires at ``expire_at_s``
        (epoch seconds; 0: no change). Runs of them go as one script call: one ZADD per
        key, not one command per member."""
        if mapping:
            return self._add("zadd_expire", key, dict(mapping), expire_at_s)
        return self

    def sadd(self, key: str, members: Iterable[str]) -> Writes:
        members = list(members)
        if members:
            return self._add("sadd", key, members)
        return self

    def srem(self, key: str, members: Iterable[str]) -> Writes:
        members = list(members)
        if members:
            return self._add("srem", key, members)
        return self

    def incr(self, key: str) -> Writes:
        """Add 1 to the integer in ``key`` (0 when missing)."""
        return self._add("incr", key)

    def zrem(self, key: str, members: Iterable[str]) -> Writes:
        members = list(members)
        if members:
            return self._add("zrem", key, members)
        return self

    def expire_at(self, key: str, when_s: int) -> Writes:
        return self._add("expire_at", key, int(when_s))

    def ztrim(self, key: str, keep: int) -> Writes:
        """Keep the ``keep`` highest scores of a sorted set (ties: the greater member stays)."""
        return self._add("ztrim", key, keep)

    def zrem_by_score(self, key: str, low: Bound, high: Bound) -> Writes:
        return self._add("zrem_by_score", key, low, high)

    def zincr_trim(
        self,
        key: str,
        increments: Mapping[str, float],
        keep: int,
        trim_above: int | None = None,
        expire_at_s: int = 0,
    ) -> Writes:
        """Add ``increments`` to sorted set ``key``; once it holds more than ``trim_above``
        (default ``keep``) members, keep the ``keep`` highest (ties: the greater member stays,
        as Redis's ZREMRANGEBYRANK removes the lowest ranks); then set its expiry. A member
        that a negative increment brings to zero or below (not to -inf) is removed."""
        if increments:
            bound = trim_above if trim_above is not None else keep
            return self._add("zincr_trim", key, dict(increments), keep, bound, expire_at_s)
        return self

    def hincr_float(self, key: str, increments: Mapping[Any, float]) -> Writes:
        """``HINCRBYFLOAT key field amount`` for every field; fields may be ints."""
        if increments:
            return self._add("hincr_float", key, dict(increments))
        return self

    def hadd_vectors(self, key: str, deltas: Mapping[str, tuple[bytes, bytes | None]]) -> Writes:
        """Add packed vectors (little-endian float32) to hash fields: ``{field: (delta,
        base)}``. A missing field starts as ``base`` (zeros when None); each component is
        summed in double precision and stored as float32; the result has the delta's length
        (a shorter stored value counts as zeros beyond its end). Commutative: workers that
        send deltas of one field never overwrite each other."""
        if deltas:
            return self._add("hadd_vectors", key, dict(deltas))
        return self


class StoreError(RuntimeError):
    """The store answered with an error (e.g. authentication) rather than data."""


class TransactionConflict(RuntimeError):
    """Watched keys kept changing during every attempt of :meth:`Store.transact`."""


# Called with the watched keys' values; returns the writes to apply, or None for none.
Build = Callable[[list[bytes | None]], Awaitable[Writes | None]]


class Store(ABC):
    """Reads, atomic writes and an optimistic transaction over one keyspace."""

    # Errors that waiting cures (outages, failovers, memory pressure, conflicts).
    transient_errors: tuple[type[BaseException], ...] = (TransactionConflict,)
    # Kinds of ``transient_errors`` that are not transient after all (a wrong password).
    permanent_errors: tuple[type[BaseException], ...] = ()

    @abstractmethod
    async def read(self, reads: Reads) -> list[Any]:
        """Every read of ``reads`` in one round trip, answers in order."""

    @abstractmethod
    async def apply(self, writes: Writes) -> None:
        """Apply ``writes`` atomically (MULTI/EXEC), with no fence."""

    @abstractmethod
    async def transact(
        self,
        watch: Sequence[str],
        build: Build,
        attempts: int = 5,
        meanwhile: Callable[[], None] | None = None,
    ) -> bool:
        """Optimistic transaction: read ``watch``, call ``build`` with their values, and apply
        the writes it returns atomically unless a watched key changed meanwhile; then start
        again, at most ``attempts`` times (:class:`TransactionConflict`).

        Returns True when writes were applied, False when ``build`` returned None. ``build``
        may read the store; it may run more than once. ``meanwhile`` is called after each
        attempt's writes went to the store and before its outcome is known: work that needs
        no store (it must not use one), done while the store applies them. It runs once per
        attempt that built writes; its errors propagate once the attempt's outcome is in.
        """

    @abstractmethod
    async def watch(self, keys: Sequence[str]) -> None:
        """Inside :meth:`transact`'s ``build``: watch ``keys`` too, so the transaction
        starts again if any of them changes from now until it applies (read them after this
        call). Outside a transaction it does nothing."""

    @abstractmethod
    async def scan(self, pattern: str) -> list[str]:
        """Keys matching a glob ``pattern`` (operations and tests; never on a hot path)."""

    @abstractmethod
    async def ping(self) -> None:
        """Raise :class:`StoreError` (or a transient error) when the store does not answer."""

    async def close(self) -> None:  # noqa: B027 - optional for stores without connections
        """Release connections."""

    # --- one read at a time ---------------------------------------------------------------
    async def _one(self, reads: Reads) -> Any:
        return (await self.read(reads))[0]

    async def get(self, key: str) -> bytes | None:
        return await self._one(Reads().get(key))

    async def mget(self, keys: Sequence[str]) -> list[bytes | None]:
        return await self._one(Reads().mget(keys))

    async def hget(self, key: str, field: str) -> bytes | None:
        return await self._one(Reads().hget(key, field))

    async def hmget(self, key: str, fields: Sequence[Any]) -> list[bytes | None]:
        return await self._one(Reads().hmget(key, fields))

    async def hgetall(self, key: str) -> dict[bytes, bytes]:
        return await self._one(Reads().hgetall(key))

    async def zrange(
        self, key: str, start: int, stop: int, desc: bool = False
    ) -> list[tuple[bytes, float]]:
        return await self._one(Reads().zrange(key, start, stop, desc))

    async def zrange_by_score(
        self,
        key: str,
        low: Bound,
        high: Bound,
        desc: bool = False,
        offset: int = 0,
        count: int | None = None,
    ) -> list[tuple[bytes, float]]:
        reads = Reads().zrange_by_score(key, low, high, desc, offset, count)
        return await self._one(reads)

    async def zmscore(self, key: str, members: Sequence[str]) -> list[float | None]:
        return await self._one(Reads().zmscore(key, members))

    async def smembers(self, key: str) -> set[bytes]:
        return await self._one(Reads().smembers(key))

    async def expire_time(self, key: str) -> int:
        return await self._one(Reads().expire_time(key))
