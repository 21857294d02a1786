"""An in-memory store with Redis's behaviour, for unit tests of plans and read functions.

It answers exactly what :class:`~pipeline.store.redis.RedisStore` answers for the same reads
and writes (the contract suite runs against both): bytes for values and members, floats for
scores, sorted-set ties ordered by member bytes, empty aggregates deleted, expiry honoured
at read time. It is single-process and never blocks; ``transact`` detects writes made while
``build`` awaited, as WATCH does.
"""

from __future__ import annotations

import fnmatch
import math
import struct
import time
from collections.abc import Callable, Iterable, Sequence
from contextvars import ContextVar
from typing import Any

from pipeline.core.blend import blend_related, rank_related
from pipeline.store.base import Bound, Build, Op, Reads, Scalar, Store, TransactionConflict, Writes


def encode(value: Scalar) -> bytes:
    """A value as stored: bytes as they are, str as UTF-8, numbers as the ``repr`` of the
    Python number (a numpy float's own repr is not a number). The Redis store may send a
    float as other text of the same number (orjson's), which reads back the same."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"invalid value of type {type(value).__name__}")
    return repr(float(value) if isinstance(value, float) else value).encode()


def _float_text(value: float) -> bytes:
    """A float as HINCRBYFLOAT answers it: whole numbers without a fraction."""
    if value.is_integer() and abs(value) < 1e17:
        return str(int(value)).encode()
    return repr(value).encode()


def _bound(bound: Bound) -> tuple[float, bool]:
    """(value, exclusive) of a sorted-set bound as Redis parses it."""
    if isinstance(bound, str):
        if bound.startswith("("):
            return float(bound[1:]), True
        return float(bound), False
    return float(bound), False


def _within(score: float, low: tuple[float, bool], high: tuple[float, bool]) -> bool:
    above = score > low[0] if low[1] else score >= low[0]
    below = score < high[0] if high[1] else score <= high[0]
    return above and below


def _weight(raw: bytes | None) -> float:
    """A stored weight as the related-blend script reads it: missing, not a number,
    negative or NaN count 0."""
    try:
        value = float(raw) if raw is not None else 0.0
    except ValueError:
        return 0.0
    return value if value >= 0 else 0.0


def _rank_slice(length: int, start: int, stop: int) -> slice:
    """Redis's inclusive, negative-from-the-end rank range as a slice."""
    if start < 0:
        start = max(length + start, 0)
    if stop < 0:
        stop = length + stop
    if start > stop or start >= length:
        return slice(0, 0)
    return slice(start, min(stop, length - 1) + 1)


# Keys watched by the ``build`` running in this task, with their versions (Store.watch).
_WATCHING: ContextVar[dict[str, int] | None] = ContextVar("watching", default=None)


class MemoryStore(Store):
    """Dicts in one process. ``clock`` gives epoch seconds (tests may move time)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._data: dict[str, Any] = {}
        self._expiry: dict[str, float] = {}
        self._versions: dict[str, int] = {}

    # --- keyspace ---------------------------------------------------------------------------
    def _live(self, key: str) -> Any:
        expiry = self._expiry.get(key)
        if expiry is not None and expiry <= self.clock():
            self._drop(key)
        return self._data.get(key)

    def _drop(self, key: str) -> None:
        if self._data.pop(key, None) is not None:
            self._touch(key)
        self._expiry.pop(key, None)

    def _touch(self, key: str) -> None:
        self._versions[key] = self._versions.get(key, 0) + 1

    def _container(self, key: str, container: type) -> Any:
        value = self._live(key)
        if value is None:
            value = self._data[key] = container()
        elif type(value) is not container:
            raise TypeError(f"WRONGTYPE {key} holds another type of value")
        self._touch(key)
        return value

    def _read_container(self, key: str, container: type) -> Any:
        value = self._live(key)
        if value is not None and type(value) is not container:
            raise TypeError(f"WRONGTYPE {key} holds another type of value")
        return value

    def _prune(self, key: str) -> None:
        """Redis deletes a hash, set or sorted set when its last member goes."""
        value = self._data.get(key)
        if value is not None and not isinstance(value, bytes) and not value:
            self._drop(key)

    # --- reads --------------------------------------------------------------------------------
    async def read(self, reads: Reads) -> list[Any]:
        return [self._read(op) for op in reads.ops]

    def _read(self, op: Op) -> Any:
        name = op[0]
        if name == "get":
            return self._string(op[1])
        if name == "mget":
            return [self._string(key) for key in op[1]]
        if name == "hget":
            fields = self._read_container(op[1], _Hash) or {}
            return fields.get(encode(op[2]))
        if name == "hmget":
            fields = self._read_container(op[1], _Hash) or {}
            return [fields.get(encode(field)) for field in op[2]]
        if name == "hgetall":
            return dict(self._read_container(op[1], _Hash) or {})
        if name == "zrange":
            _, key, start, stop, desc = op
            ordered = self._ordered(key, desc)
            return ordered[_rank_slice(len(ordered), start, stop)]
        if name == "zrange_by_score":
            _, key, low, high, desc, offset, count = op
            lower, upper = _bound(low), _bound(high)
            found = [row for row in self._ordered(key, desc) if _within(row[1], lower, upper)]
            found = found[offset:]
            return found if count is None or count < 0 else found[:count]
        if name == "zmscore":
            scores = self._zset(op[1]) or {}
            return [scores.get(encode(member)) for member in op[2]]
        if name == "smembers":
            return set(self._read_container(op[1], _Set) or ())
        if name == "expire_time":
            if self._live(op[1]) is None:
                return -2
            expiry = self._expiry.get(op[1])
            return -1 if expiry is None else int(expiry)
        if name == "related_blend":
            return self._related_blend(*op[1:])
        raise ValueError(f"unknown read {name!r}")

    def _related_blend(
        self,
        sets: tuple[tuple[str, str, str], ...],
        hidden: str,
        exclude: str,
        depth: int,
        discount: float,
        n: int,
    ) -> list[tuple[str, float, str]]:
        if depth <= 0 or n <= 0:
            return []
        gone = {m.decode("utf-8", "replace") for m in self._read_container(hidden, _Set) or ()}
        gone.add(exclude)
        lists = {}
        for key, weights_key, label in sets:
            rows = self._ordered(key, True)[:depth]
            weights = self._read_container(weights_key, _Hash) or {}
            counts = [(member.decode("utf-8", "replace"), score) for member, score in rows]
            weight = {
                member: _weight(weights.get(raw))
                for (member, _), (raw, _) in zip(counts, rows, strict=True)
            }
            lists[label] = rank_related(counts, weight, discount, depth, gone)
        return blend_related(lists, n)

    def _string(self, key: str) -> bytes | None:
        value = self._live(key)
        return value if isinstance(value, bytes) else None

    def _zset(self, key: str) -> dict[bytes, float] | None:
        return self._read_container(key, _SortedSet)

    def _ordered(self, key: str, desc: bool) -> list[tuple[bytes, float]]:
        scores = self._zset(key) or {}
        ordered = sorted(scores.items(), key=lambda row: (row[1], row[0]))
        return ordered[::-1] if desc else ordered

    # --- writes -------------------------------------------------------------------------------
    async def apply(self, writes: Writes) -> None:
        self._apply(writes)

    def _apply(self, writes: Writes) -> None:
        for op in writes.ops:
            self._write(op)

    def _write(self, op: Op) -> None:
        name = op[0]
        if name == "set":
            _, key, value, ttl_s = op
            self._drop(key)
            self._data[key] = encode(value)
            self._touch(key)
            if ttl_s:
                self._expiry[key] = self.clock() + ttl_s
        elif name == "delete":
            for key in op[1]:
                self._drop(key)
        elif name == "hset":
            fields = self._container(op[1], _Hash)
            for field, value in op[2].items():
                fields[encode(field)] = encode(value)
        elif name == "zadd":
            scores = self._container(op[1], _SortedSet)
            for member, score in op[2].items():
                scores[encode(member)] = float(score)
        elif name == "zadd_expire":
            scores = self._container(op[1], _SortedSet)
            for member, score in op[2].items():
                scores[encode(member)] = float(score)
            if op[3] > 0:
                self._expire_at(op[1], op[3])
        elif name == "sadd":
            members = self._container(op[1], _Set)
            members.update(encode(member) for member in op[2])
        elif name == "expire_at":
            self._expire_at(op[1], op[2])
        elif name == "srem":
            members = self._read_container(op[1], _Set)
            if members:
                members.difference_update(encode(member) for member in op[2])
                self._touch(op[1])
                self._prune(op[1])
        elif name == "incr":
            current = self._string(op[1])
            expiry = self._expiry.get(op[1])
            self._data[op[1]] = encode(int(current or b"0") + 1)
            self._touch(op[1])
            if expiry is not None:
                self._expiry[op[1]] = expiry
        elif name == "zrem":
            scores = self._read_container(op[1], _SortedSet)
            if scores:
                for member in op[2]:
                    scores.pop(encode(member), None)
                self._touch(op[1])
                self._prune(op[1])
        elif name == "ztrim":
            scores = self._read_container(op[1], _SortedSet)
            if scores and len(scores) > op[2]:
                ordered = sorted(scores.items(), key=lambda row: (row[1], row[0]))
                for member, _ in ordered[: len(ordered) - op[2]]:
                    del scores[member]
                self._touch(op[1])
                self._prune(op[1])
        elif name == "zrem_by_score":
            _, key, low, high = op
            scores = self._read_container(key, _SortedSet)
            if scores:
                lower, upper = _bound(low), _bound(high)
                for member in [m for m, s in scores.items() if _within(s, lower, upper)]:
                    del scores[member]
                self._touch(key)
                self._prune(key)
        elif name == "zincr_trim":
            self._zincr_trim(*op[1:])
        elif name == "hadd_vectors":
            fields = self._container(op[1], _Hash)
            for field, (delta, base) in op[2].items():
                name_bytes = encode(field)
                count = len(delta) // 4
                sums = list(struct.unpack(f"<{count}f", delta[: 4 * count]))
                stored = fields.get(name_bytes, base or b"")
                known = min(count, len(stored) // 4)
                for j, old in enumerate(struct.unpack(f"<{known}f", stored[: 4 * known])):
                    sums[j] += old
                fields[name_bytes] = struct.pack(f"<{count}f", *sums)
        elif name == "hincr_float":
            fields = self._container(op[1], _Hash)
            for field, amount in op[2].items():
                name_bytes = encode(field)
                total = float(fields.get(name_bytes, b"0")) + float(amount)
                if not math.isfinite(total):
                    raise ValueError("increment would produce NaN or Infinity")
                fields[name_bytes] = _float_text(total)
        else:
            raise ValueError(f"unknown write {name!r}")

    def _expire_at(self, key: str, when_s: int) -> None:
        if self._live(key) is None:
            return
        if when_s <= self.clock():
            self._drop(key)
        else:
            self._expiry[key] = float(when_s)
            self._touch(key)

    def _zincr_trim(
        self, key: str, increments: dict[str, float], keep: int, trim_above: int, expire_at_s: int
    ) -> None:
        scores = self._container(key, _SortedSet)
        for member, amount in increments.items():
            encoded = encode(member)
            total = scores.get(encoded, 0.0) + float(amount)
            if math.isnan(total):
                raise ValueError("resulting score is not a number (NaN)")
            if float(amount) < 0 and -math.inf < total <= 0:
                scores.pop(encoded, None)
            else:
                scores[encoded] = total
        if len(scores) > trim_above:
            # ZREMRANGEBYRANK 0 -(keep + 1): the lowest ranks go, ties by member bytes.
            ordered = sorted(scores.items(), key=lambda row: (row[1], row[0]))
            for member, _ in ordered[: max(len(ordered) - keep, 0)]:
                del scores[member]
            self._prune(key)
        if expire_at_s > 0:
            self._expire_at(key, expire_at_s)

    # --- transactions and the rest --------------------------------------------------------------
    async def transact(
        self,
        watch: Sequence[str],
        build: Build,
        attempts: int = 5,
        meanwhile: Callable[[], None] | None = None,
    ) -> bool:
        for _ in range(attempts):
            before = self._snapshot(watch)
            watched: dict[str, int] = {}
            token = _WATCHING.set(watched)
            try:
                writes = await build([self._string(key) for key in watch])
            finally:
                _WATCHING.reset(token)
            if writes is None:
                return False
            moved = self._snapshot(watch) != before
            moved = moved or self._snapshot(watched) != list(watched.values())
            if not moved:
                self._apply(writes)
            if meanwhile is not None:
                # As with Redis: after the writes went to the store, before the outcome.
                meanwhile()
            if moved:
                continue
            return True
        raise TransactionConflict(f"keys {list(watch)} kept changing during {attempts} attempts")

    def _snapshot(self, keys: Iterable[str]) -> list[int]:
        return [self._versions.get(key, 0) for key in keys]

    async def watch(self, keys: Sequence[str]) -> None:
        watched = _WATCHING.get()
        if watched is not None:
            for key in keys:
                watched.setdefault(key, self._versions.get(key, 0))

    async def scan(self, pattern: str) -> list[str]:
        live = [key for key in list(self._data) if self._live(key) is not None]
        return [key for key in live if fnmatch.fnmatchcase(key, pattern)]

    async def ping(self) -> None:
        return None


class _SortedSet(dict[bytes, float]):
    """A sorted set: member -> score (ordered on read)."""


class _Hash(dict[bytes, bytes]):
    """A hash: field -> value."""


class _Set(set[bytes]):
    """A set of members."""
