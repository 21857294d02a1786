"""The store contract: one suite that every store implementation must pass.

Imported by ``tests/unit/store/test_memory_store.py`` (MemoryStore) and
``tests/integration/test_redis_store.py`` (RedisStore on a real redis-server); each provides
the ``store`` fixture and a ``key`` fixture that makes keys unique to the test.
"""

from __future__ import annotations

import asyncio
import math
import struct
import time
from collections.abc import Callable

import numpy as np
import pytest

from pipeline.store.base import Reads, Store, TransactionConflict, Writes

Key = Callable[[str], str]

# Every contract test is a coroutine; modules that import the suite mark it too.
pytestmark = pytest.mark.asyncio


async def test_strings_encode_values_as_redis_does(store: Store, key: Key) -> None:
    writes = Writes()
    writes.set(key("s"), "héllo").set(key("b"), b"\x00\xff").set(key("i"), 42)
    writes.set(key("f"), 0.1).set(key("neg"), -1.5e-7)
    await store.apply(writes)
    assert await store.get(key("s")) == "héllo".encode()
    assert await store.get(key("b")) == b"\x00\xff"
    assert await store.get(key("i")) == b"42"
    assert float(await store.get(key("f")) or b"nan") == 0.1
    assert float(await store.get(key("neg")) or b"nan") == -1.5e-7
    assert await store.get(key("missing")) is None
    assert await store.mget([key("i"), key("missing"), key("s")]) == [b"42", None, "héllo".encode()]
    assert await store.mget([]) == []


async def test_expiry_of_set_and_expire_at(store: Store, key: Key) -> None:
    now = time.time()
    await store.apply(Writes().set(key("ttl"), "x", 100).set(key("forever"), "y"))
    assert abs(await store.expire_time(key("ttl")) - (now + 100)) <= 2
    assert await store.expire_time(key("forever")) == -1
    assert await store.expire_time(key("missing")) == -2
    # Setting again without a TTL clears it, as SET does.
    await store.apply(Writes().set(key("ttl"), "z"))
    assert await store.expire_time(key("ttl")) == -1
    await store.apply(Writes().expire_at(key("forever"), int(now) + 500))
    assert abs(await store.expire_time(key("forever")) - (int(now) + 500)) <= 1
    # An expiry in the past deletes the key; on a missing key it does nothing.
    await store.apply(Writes().expire_at(key("forever"), int(now) - 10))
    assert await store.get(key("forever")) is None
    await store.apply(Writes().expire_at(key("never-set"), int(now) + 10))
    assert await store.expire_time(key("never-set")) == -2


async def test_hashes(store: Store, key: Key) -> None:
    await store.apply(Writes().hset(key("h"), {"a": "1", "b": 2.5, 7: b"raw"}))
    assert await store.hget(key("h"), "a") == b"1"
    assert await store.hmget(key("h"), ["b", "zz", 7]) == [b"2.5", None, b"raw"]
    assert await store.hmget(key("h"), []) == []
    assert await store.hgetall(key("h")) == {b"a": b"1", b"b": b"2.5", b"7": b"raw"}
    assert await store.hgetall(key("missing")) == {}
    assert await store.hget(key("missing"), "a") is None
    # An empty mapping writes nothing (Redis would refuse HSET without fields).
    await store.apply(Writes().hset(key("empty"), {}))
    assert await store.expire_time(key("empty")) == -2


async def test_hincr_float_adds_and_accepts_int_fields(store: Store, key: Key) -> None:
    await store.apply(Writes().hincr_float(key("w"), {1: 0.25, "x": -3.0}))
    await store.apply(Writes().hincr_float(key("w"), {1: 0.5, 2: 1e-12}))
    values = {field: float(value) for field, value in (await store.hgetall(key("w"))).items()}
    assert math.isclose(values[b"1"], 0.75, rel_tol=1e-12)
    assert values[b"x"] == -3.0
    assert math.isclose(values[b"2"], 1e-12, rel_tol=1e-9)


async def test_increments_given_as_numpy_scalars_add_their_exact_values(
    store: Store, key: Key
) -> None:
    """The models hand over numpy scalars (whose repr is not a number): stored exactly."""
    third = np.float64(1.0) / 3.0
    await store.apply(Writes().hincr_float(key("w"), {"a": third, "b": np.float32(0.1)}))
    await store.apply(Writes().zincr_trim(key("z"), {"a": third, "b": np.float64(2.5)}, keep=5))
    values = await store.hgetall(key("w"))
    assert float(values[b"a"]) == float(third)
    assert float(values[b"b"]) == float(np.float32(0.1))
    assert await store.zrange(key("z"), 0, -1) == [(b"a", float(third)), (b"b", 2.5)]
    # Exponents both ways, a float past 2**53, negative zero, minus infinity: as given.
    amounts = {"e": 1e-7, "f": 1e22, "g": 1.2345678901234568e17, "h": -0.0, "i": -math.inf}
    await store.apply(Writes().zincr_trim(key("x"), amounts, keep=10))
    assert dict(await store.zrange(key("x"), 0, -1)) == {m.encode(): v for m, v in amounts.items()}


async def test_float_values_set_read_back_exactly(store: Store, key: Key) -> None:
    """Hash values and sorted-set scores given as floats (a click model's weights, set by a
    worker that owns them): every one reads back as the same double, numpy scalars and
    infinities included; mixed values keep their own types."""
    third = np.float64(1.0) / 3.0
    values = {1: 0.1 + 0.2, 2: 1e-300, 3: -2.5e17, 4: float(third), 5: -0.0, 6: math.inf}
    await store.apply(Writes().hset(key("h"), {**values, 7: third}))
    stored = await store.hgetall(key("h"))
    assert {int(field): float(value) for field, value in stored.items()} == {
        **values,
        7: float(third),
    }
    scores = {"a": 1e-7, "b": 1.2345678901234568e17, "c": float(third), "d": -math.inf}
    await store.apply(Writes().zadd(key("z"), {**scores, "e": np.float64(2.5)}))
    assert dict(await store.zrange(key("z"), 0, -1)) == {
        **{member.encode(): score for member, score in scores.items()},
        b"e": 2.5,
    }
    await store.apply(Writes().hset(key("m"), {"f": 0.5, "g": "text", "h": 3}))
    assert await store.hgetall(key("m")) == {b"f": b"0.5", b"g": b"text", b"h": b"3"}


async def test_sorted_set_ranks_and_ties(store: Store, key: Key) -> None:
    await store.apply(Writes().zadd(key("z"), {"b": 1.0, "a": 1.0, "c": 2.0, "d": -1.0}))
    ascending = [(b"d", -1.0), (b"a", 1.0), (b"b", 1.0), (b"c", 2.0)]
    assert await store.zrange(key("z"), 0, -1) == ascending
    # Descending reverses the whole order, ties included (ZREVRANGE).
    assert await store.zrange(key("z"), 0, -1, desc=True) == ascending[::-1]
    assert await store.zrange(key("z"), 1, 2) == ascending[1:3]
    assert await store.zrange(key("z"), -2, -1) == ascending[-2:]
    assert await store.zrange(key("z"), 3, 100) == ascending[3:]
    assert await store.zrange(key("z"), 5, 10) == []
    assert await store.zrange(key("z"), 2, 1) == []
    assert await store.zrange(key("missing"), 0, -1) == []


async def test_sorted_set_score_ranges(store: Store, key: Key) -> None:
    rows = {"n": -math.inf, "a": 0.0, "b": 1.0, "c": 2.0, "d": 3.0}
    await store.apply(Writes().zadd(key("z"), rows))
    by_score = store.zrange_by_score
    assert [m for m, _ in await by_score(key("z"), "(0", "+inf")] == [b"b", b"c", b"d"]
    assert [m for m, _ in await by_score(key("z"), 0, 2)] == [b"a", b"b", b"c"]
    assert [m for m, _ in await by_score(key("z"), "(0", "+inf", desc=True)] == [b"d", b"c", b"b"]
    assert [m for m, _ in await by_score(key("z"), "(0", "+inf", desc=True, count=2)] == [
        b"d",
        b"c",
    ]
    assert [m for m, _ in await by_score(key("z"), "-inf", "+inf", offset=1, count=2)] == [
        b"a",
        b"b",
    ]
    assert [m for m, _ in await by_score(key("z"), "-inf", "+inf", offset=3)] == [b"c", b"d"]
    assert await by_score(key("z"), "-inf", "-inf") == [(b"n", -math.inf)]
    assert await by_score(key("z"), "(3", "+inf") == []


async def test_zmscore(store: Store, key: Key) -> None:
    await store.apply(Writes().zadd(key("z"), {"a": 1.5}))
    assert await store.zmscore(key("z"), ["a", "b"]) == [1.5, None]
    assert await store.zmscore(key("missing"), ["a"]) == [None]
    assert await store.zmscore(key("z"), []) == []


async def test_zincr_trim_accumulates_trims_and_expires(store: Store, key: Key) -> None:
    when = int(time.time()) + 3600
    await store.apply(Writes().zincr_trim(key("z"), {"a": 1.0, "b": 2.0}, keep=3))
    await store.apply(Writes().zincr_trim(key("z"), {"a": 2.5, "c": 0.5}, keep=3))
    assert await store.zrange(key("z"), 0, -1) == [(b"c", 0.5), (b"b", 2.0), (b"a", 3.5)]
    assert await store.expire_time(key("z")) == -1
    # Over trim_above: back to `keep`, the lowest scores go; ties by member (the smaller goes).
    increments = {"d": 2.0, "e": 2.0, "f": 0.1}
    await store.apply(Writes().zincr_trim(key("z"), increments, 3, 5, expire_at_s=when))
    assert await store.zrange(key("z"), 0, -1) == [(b"d", 2.0), (b"e", 2.0), (b"a", 3.5)]
    assert abs(await store.expire_time(key("z")) - when) <= 1
    # At or under trim_above nothing is trimmed.
    await store.apply(Writes().zincr_trim(key("y"), {"a": 1, "b": 2, "c": 3}, 1, 3))
    assert len(await store.zrange(key("y"), 0, -1)) == 3


async def test_zadd_expire_sets_scores_and_the_expiry(store: Store, key: Key) -> None:
    """Members get the given scores (new or not), the key its expiry (0: left as it is);
    a set of more members than one ZADD of the script takes is added whole."""
    when = int(time.time()) + 3600
    await store.apply(Writes().zadd_expire(key("z"), {"a": 0.0, "b": 2.0}, 0))
    assert await store.expire_time(key("z")) == -1
    await store.apply(Writes().zadd_expire(key("z"), {"b": 0.5, "c": 0.0}, when))
    assert await store.zrange(key("z"), 0, -1) == [(b"a", 0.0), (b"c", 0.0), (b"b", 0.5)]
    assert abs(await store.expire_time(key("z")) - when) <= 1
    await store.apply(Writes().zadd_expire(key("z"), {"d": 1.0}, 0))
    assert abs(await store.expire_time(key("z")) - when) <= 1
    many = {f"m{m:05d}": float(m) for m in range(5000)}
    await store.apply(
        Writes().zadd_expire(key("big"), many, when).zadd_expire(key("y"), {"x": 1}, 0)
    )
    assert len(await store.zrange(key("big"), 0, -1)) == 5000
    assert await store.zrange(key("big"), 0, 0, desc=True) == [(b"m04999", 4999.0)]
    assert await store.zrange(key("y"), 0, -1) == [(b"x", 1.0)]
    # Nothing to add: no write, no key.
    await store.apply(Writes().zadd_expire(key("none"), {}, when))
    assert await store.expire_time(key("none")) == -2


async def test_a_negative_increment_to_zero_or_below_removes_the_member(
    store: Store, key: Key
) -> None:
    await store.apply(Writes().zadd(key("z"), {"a": 2.0, "b": 1.0, "c": 0.0, "blocked": -math.inf}))
    await store.apply(
        Writes().zincr_trim(key("z"), {"a": -1.0, "b": -1.0, "blocked": -1.0, "n": -2.0}, 10)
    )
    assert await store.zrange(key("z"), 0, -1) == [
        (b"blocked", -math.inf),
        (b"c", 0.0),
        (b"a", 1.0),
    ]


async def test_minus_infinity_absorbs_increments(store: Store, key: Key) -> None:
    await store.apply(Writes().zadd(key("z"), {"blocked": -math.inf}))
    await store.apply(Writes().zincr_trim(key("z"), {"blocked": 5.0, "ok": 1.0}, 10))
    assert await store.zmscore(key("z"), ["blocked", "ok"]) == [-math.inf, 1.0]


async def test_zrem_removes_members_and_ignores_missing_ones(store: Store, key: Key) -> None:
    await store.apply(Writes().zadd(key("z"), {"a": 1.0, "b": 2.0}))
    await store.apply(Writes().zrem(key("z"), ["a", "nope"]).zrem(key("missing"), ["a"]))
    assert await store.zrange(key("z"), 0, -1) == [(b"b", 2.0)]
    await store.apply(Writes().zrem(key("z"), ["b"]))
    assert await store.expire_time(key("z")) == -2


async def test_ztrim_keeps_the_highest_scores(store: Store, key: Key) -> None:
    await store.apply(Writes().zadd(key("z"), {"a": 1.0, "b": 3.0, "c": 3.0, "d": 2.0}))
    await store.apply(Writes().ztrim(key("z"), 2).ztrim(key("missing"), 1))
    assert await store.zrange(key("z"), 0, -1) == [(b"b", 3.0), (b"c", 3.0)]
    await store.apply(Writes().ztrim(key("z"), 5))
    assert len(await store.zrange(key("z"), 0, -1)) == 2
    await store.apply(Writes().ztrim(key("z"), 0))
    assert await store.expire_time(key("z")) == -2


async def test_zrem_by_score_and_empty_sets_disappear(store: Store, key: Key) -> None:
    await store.apply(Writes().zadd(key("z"), {"a": 1.0, "b": 5.0, "c": 9.0}))
    await store.apply(Writes().zrem_by_score(key("z"), "-inf", 5))
    assert await store.zrange(key("z"), 0, -1) == [(b"c", 9.0)]
    await store.apply(Writes().zrem_by_score(key("z"), "(8", "+inf"))
    assert await store.expire_time(key("z")) == -2


async def test_srem_and_incr(store: Store, key: Key) -> None:
    await store.apply(Writes().sadd(key("s"), ["a", "b"]).srem(key("s"), ["a", "zz"]))
    assert await store.smembers(key("s")) == {b"b"}
    await store.apply(Writes().srem(key("s"), ["b"]).srem(key("missing"), ["a"]))
    assert await store.expire_time(key("s")) == -2
    await store.apply(Writes().incr(key("n")).incr(key("n")))
    assert await store.get(key("n")) == b"2"


async def test_sets_and_delete(store: Store, key: Key) -> None:
    await store.apply(Writes().sadd(key("s"), ["a", "b"]).sadd(key("s"), ["b", "c"]))
    assert await store.smembers(key("s")) == {b"a", b"b", b"c"}
    assert await store.smembers(key("missing")) == set()
    await store.apply(Writes().set(key("x"), 1).delete(key("s"), key("x"), key("missing")))
    assert await store.smembers(key("s")) == set()
    assert await store.get(key("x")) is None


async def test_writes_apply_in_order(store: Store, key: Key) -> None:
    await store.apply(Writes().set(key("a"), 1).delete(key("a")).set(key("b"), 1).set(key("b"), 2))
    assert await store.mget([key("a"), key("b")]) == [None, b"2"]


async def test_batched_reads_answer_in_order(store: Store, key: Key) -> None:
    await store.apply(
        Writes().set(key("s"), "v").hset(key("h"), {"f": "1"}).zadd(key("z"), {"m": 2})
    )
    reads = Reads().get(key("s")).mget([]).hmget(key("h"), ["f", "g"]).zrange(key("z"), 0, -1)
    reads.smembers(key("missing")).zmscore(key("z"), [])
    assert await store.read(reads) == [b"v", [], [b"1", None], [(b"m", 2.0)], set(), []]
    assert await store.read(Reads()) == []


async def test_transact_applies_what_build_returns(store: Store, key: Key) -> None:
    await store.apply(Writes().set(key("fence"), 7))
    seen: list[list[bytes | None]] = []

    async def build(values: list[bytes | None]) -> Writes | None:
        seen.append(values)
        return Writes().set(key("fence"), 8).set(key("data"), "x")

    assert await store.transact([key("fence"), key("other")], build) is True
    assert seen == [[b"7", None]]
    assert await store.mget([key("fence"), key("data")]) == [b"8", b"x"]

    async def nothing(values: list[bytes | None]) -> Writes | None:
        return None

    assert await store.transact([key("fence")], nothing) is False
    assert await store.get(key("fence")) == b"8"


async def test_transact_retries_when_a_watched_key_moves(store: Store, key: Key) -> None:
    attempts = 0

    async def build(values: list[bytes | None]) -> Writes | None:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            # Another writer moves the fence while this one plans.
            await store.apply(Writes().set(key("fence"), 100))
        return Writes().set(key("fence"), int(values[0] or b"0") + 1)

    assert await store.transact([key("fence")], build) is True
    assert attempts == 2
    assert await store.get(key("fence")) == b"101"

    async def always_conflicting(values: list[bytes | None]) -> Writes | None:
        await store.apply(Writes().set(key("fence"), int(values[0] or b"0") + 1))
        return Writes().set(key("lost"), 1)

    with pytest.raises(TransactionConflict):
        await store.transact([key("fence")], always_conflicting, attempts=3)
    assert await store.get(key("lost")) is None


async def test_meanwhile_runs_once_per_attempt_that_built_writes(store: Store, key: Key) -> None:
    """``meanwhile`` runs after each attempt's writes were built, not for an attempt with
    nothing to write; the transaction's outcome does not depend on it."""
    attempts: list[int] = []
    calls: list[int] = []

    async def build(values: list[bytes | None]) -> Writes | None:
        attempts.append(len(attempts) + 1)
        if len(attempts) == 1:
            await store.apply(Writes().set(key("fence"), 100))
        return Writes().set(key("fence"), int(values[0] or b"0") + 1)

    assert await store.transact([key("fence")], build, meanwhile=lambda: calls.append(1))
    assert attempts == [1, 2]
    assert calls == [1, 1]
    assert await store.get(key("fence")) == b"101"

    async def nothing(values: list[bytes | None]) -> Writes | None:
        return None

    assert not await store.transact([key("fence")], nothing, meanwhile=lambda: calls.append(2))
    assert calls == [1, 1]


async def test_an_error_of_meanwhile_comes_after_the_outcome(store: Store, key: Key) -> None:
    """An error raised by ``meanwhile`` propagates; the writes already handed over are
    applied (it runs after they went to the store)."""

    async def build(values: list[bytes | None]) -> Writes | None:
        return Writes().set(key("fence"), 5)

    def failing() -> None:
        raise RuntimeError("meanwhile failed")

    with pytest.raises(RuntimeError, match="meanwhile failed"):
        await store.transact([key("fence")], build, meanwhile=failing)
    assert await store.get(key("fence")) == b"5"


async def test_an_error_of_meanwhile_wins_over_a_moved_key(store: Store, key: Key) -> None:
    """An attempt whose watched key moved, and whose ``meanwhile`` failed: the error
    propagates (no silent retry) and the attempt's writes are not applied."""

    async def build(values: list[bytes | None]) -> Writes | None:
        await store.apply(Writes().set(key("fence"), 100))
        return Writes().set(key("fence"), 1).set(key("data"), "x")

    def failing() -> None:
        raise RuntimeError("meanwhile failed")

    with pytest.raises(RuntimeError, match="meanwhile failed"):
        await store.transact([key("fence")], build, meanwhile=failing)
    assert await store.mget([key("fence"), key("data")]) == [b"100", None]


async def test_transact_does_not_see_unrelated_writes(store: Store, key: Key) -> None:
    async def build(values: list[bytes | None]) -> Writes | None:
        await store.apply(Writes().set(key("unwatched"), 1))
        await asyncio.sleep(0)
        return Writes().set(key("fence"), 1)

    assert await store.transact([key("fence")], build) is True
    assert await store.get(key("fence")) == b"1"


async def test_scan_finds_keys_by_pattern(store: Store, key: Key) -> None:
    await store.apply(Writes().set(key("fence:a:0"), 1).set(key("fence:a:1"), 2).set(key("x"), 3))
    assert sorted(await store.scan(key("fence:a:*"))) == [key("fence:a:0"), key("fence:a:1")]
    await store.ping()


async def test_long_runs_of_writes_apply_whole(store: Store, key: Key) -> None:
    """Runs longer than one script call's arguments are split, never cut."""
    writes = Writes()
    for n in range(3000):
        writes.set(key(f"s{n}"), n, 100 if n % 2 else None)
    for k in range(300):
        writes.zincr_trim(key(f"z{k}"), {f"m{m}": float(m) for m in range(20)}, 15, 18)
    writes.hincr_float(key("h"), {f"f{f}": 1.0 for f in range(5000)})
    await store.apply(writes)
    assert await store.mget([key("s0"), key("s2999")]) == [b"0", b"2999"]
    assert await store.expire_time(key("s0")) == -1 and await store.expire_time(key("s1")) > 0
    assert [m for m, _ in await store.zrange(key("z299"), 0, 0)] == [b"m5"]
    assert len(await store.zrange(key("z0"), 0, -1)) == 15
    assert len(await store.hgetall(key("h"))) == 5000


def _packed(*values: float) -> bytes:
    return struct.pack(f"<{len(values)}f", *values)


def _unpacked(value: bytes | None) -> list[float]:
    assert value is not None
    return list(struct.unpack(f"<{len(value) // 4}f", value))


async def test_hadd_vectors_adds_packed_float32_deltas(store: Store, key: Key) -> None:
    base = _packed(1.0, -2.0, 0.5)
    # A missing field starts at the base; without a base at zeros.
    await store.apply(
        Writes().hadd_vectors(
            key("v"), {"a": (_packed(0.25, 0.25, 0.25), base), "b": (_packed(1.5, -1.0), None)}
        )
    )
    assert _unpacked(await store.hget(key("v"), "a")) == [1.25, -1.75, 0.75]
    assert _unpacked(await store.hget(key("v"), "b")) == [1.5, -1.0]
    # An existing field ignores the base: two workers' deltas both count, in any order.
    await store.apply(Writes().hadd_vectors(key("v"), {"a": (_packed(0.5, 0.0, -0.75), base)}))
    await store.apply(Writes().hadd_vectors(key("v"), {"a": (_packed(-0.25, 1.0, 0.0), None)}))
    assert _unpacked(await store.hget(key("v"), "a")) == [1.5, -0.75, 0.0]
    # Sums are rounded to float32 as numpy rounds a float64 sum (the engine's arithmetic).
    first, second = 0.1, 1e-9
    await store.apply(Writes().hadd_vectors(key("r"), {"x": (_packed(first), None)}))
    await store.apply(Writes().hadd_vectors(key("r"), {"x": (_packed(second), None)}))
    expected = (
        struct.unpack("<f", struct.pack("<f", first))[0]
        + struct.unpack("<f", struct.pack("<f", second))[0]
    )
    assert _unpacked(await store.hget(key("r"), "x")) == list(
        struct.unpack("<f", struct.pack("<f", expected))
    )
    # A shorter stored value counts as zeros beyond its end; the delta's length wins.
    await store.apply(Writes().hadd_vectors(key("v"), {"b": (_packed(1.0, 1.0, 1.0), None)}))
    assert _unpacked(await store.hget(key("v"), "b")) == [2.5, 0.0, 1.0]
    # Many fields in one write, next to other writes in the same transaction.
    many = {f"f{i}": (_packed(float(i), 1.0), None) for i in range(3000)}
    await store.apply(Writes().hadd_vectors(key("m"), many).set(key("s"), "x"))
    assert _unpacked(await store.hget(key("m"), "f2999")) == [2999.0, 1.0]
    assert len(await store.hgetall(key("m"))) == 3000


async def test_watch_inside_a_transaction_detects_later_writes(store: Store, key: Key) -> None:
    calls = 0

    async def build(values: list[bytes | None]) -> Writes:
        nonlocal calls
        calls += 1
        await store.watch([key("extra")])
        if calls == 1:
            # Another writer changes the extra key after it was watched.
            await store.apply(Writes().set(key("extra"), "moved"))
        return Writes().set(key("out"), str(calls))

    assert await store.transact([key("fence")], build)
    assert calls == 2
    assert await store.get(key("out")) == b"2"
    # Outside a transaction, watch does nothing.
    await store.watch([key("extra")])
