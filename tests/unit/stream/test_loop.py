"""The batch loop (``process_batch``) on the in-memory store: fences, de-duplication, dead
letters and the handler's hooks, with no broker and no Redis."""

from __future__ import annotations

import asyncio
from contextlib import suppress
from typing import Any

import orjson
import pytest

from pipeline.core.events import Event
from pipeline.store.base import Store, TransactionConflict, Writes
from pipeline.store.memory import MemoryStore
from pipeline.stream.batch import (
    Lane,
    RawMessage,
    idle_loop,
    process_batch,
    process_lanes,
    run_idle,
)
from pipeline.stream.fence import Position, applied_offsets
from pipeline.stream.handler import EventHandler
from tests.unit.features.helpers import KEYS, T0_MS, settings

pytestmark = pytest.mark.asyncio


class Counting(EventHandler):
    """Counts events per item; records the hooks it was called with."""

    name = "counting"

    def __init__(self) -> None:
        super().__init__(settings(max_future_skew_s=10**9), KEYS)
        self.hooks: list[str] = []
        self.meddle: Any = None
        # What ``meanwhile`` returns, and a callable it runs first (tests move fences there).
        self.follow_up: Writes | None = None
        self.during: Any = None

    async def plan(self, store: Store, records: list[Event]) -> Writes:
        if self.meddle is not None:
            await self.meddle()
        counts: dict[str, float] = {}
        for event in records:
            counts[event.item_id or ""] = counts.get(event.item_id or "", 0.0) + 1.0
        return Writes().hincr_float("t:counts", counts)

    def meanwhile(self) -> Writes | None:
        self.hooks.append("meanwhile")
        if self.during is not None:
            self.during()
        return self.follow_up

    def reset(self) -> None:
        self.hooks.append("reset")

    def committed(self) -> None:
        self.hooks.append("committed")

    def aborted(self) -> None:
        self.hooks.append("aborted")


def message(offset: int, event_id: str, item: str = "a", partition: int = 0) -> RawMessage:
    body = {
        "event_id": event_id,
        "type": "click",
        "user_id": "u",
        "item_id": item,
        "timestamp": T0_MS,
    }
    return RawMessage(Position("clicks", partition, offset), b"u", orjson.dumps(body))


class DeadLetters(list[tuple[bytes | None, bytes]]):
    async def __call__(self, records: list[tuple[bytes | None, bytes]]) -> None:
        self.extend(records)


async def counts(store: MemoryStore) -> dict[str, float]:
    return {k.decode(): float(v) for k, v in (await store.hgetall("t:counts")).items()}


async def test_a_replayed_batch_has_no_second_effect() -> None:
    store, handler, dead = MemoryStore(), Counting(), DeadLetters()
    batch = [message(0, "e0"), message(1, "e1", "b"), message(5, "e5", partition=1)]
    assert await process_batch(store, KEYS, handler, batch, dead) == 3
    assert await applied_offsets(store, KEYS, "counting") == {"clicks:0": 1, "clicks:1": 5}
    # Redelivery after a crash: the fences skip what was applied, the rest applies once.
    assert await process_batch(store, KEYS, handler, [*batch, message(2, "e2")], dead) == 1
    assert await counts(store) == {"a": 3.0, "b": 1.0}
    assert handler.hooks == ["meanwhile", "committed"] * 2
    assert await process_batch(store, KEYS, handler, batch, dead) == 0
    assert handler.hooks == ["meanwhile", "committed"] * 2


async def test_meanwhile_runs_for_the_lanes_that_planned_and_before_their_outcome() -> None:
    """Each lane that planned records does its ``meanwhile`` work during the transaction,
    before it hears the outcome; a lane with no message of its topics in the batch does
    none, and hears nothing."""
    store, dead = MemoryStore(), DeadLetters()
    reading, elsewhere = Counting(), Other()
    lanes = [Lane(reading), Lane(elsewhere, frozenset({"other-topic"}))]
    await process_lanes(store, KEYS, lanes, [message(0, "e0")], dead)
    assert reading.hooks == ["meanwhile", "committed"]
    assert elsewhere.hooks == []


async def test_what_meanwhile_returns_follows_the_committed_batch() -> None:
    store, handler, dead = MemoryStore(), Counting(), DeadLetters()
    handler.follow_up = Writes().set("t:derived", "from batch 1")
    await process_batch(store, KEYS, handler, [message(0, "e0")], dead)
    assert await store.get("t:derived") == b"from batch 1"
    assert handler.hooks == ["meanwhile", "committed"]


async def test_what_meanwhile_returns_is_dropped_once_another_writer_moved_the_fence() -> None:
    """Another writer moved past the batch between its commit and the writes that follow
    it (a worker that lost its partitions without knowing yet): they are not applied, and
    the handler is reset, to reload what the other writer changed."""
    store, handler, dead = MemoryStore(), Counting(), DeadLetters()
    handler.follow_up = Writes().set("t:derived", "stale")
    fence = KEYS.fence("counting", "clicks", 0)

    def other_worker_moves_on() -> None:
        # The in-memory store applied the batch before ``meanwhile``: this comes after it.
        store._apply(Writes().set(fence, 7))

    handler.during = other_worker_moves_on
    assert await process_batch(store, KEYS, handler, [message(0, "e0")], dead) == 1
    assert await store.get("t:derived") is None
    assert await store.get(fence) == b"7"
    assert handler.hooks == ["meanwhile", "committed", "reset"]


async def test_what_meanwhile_returns_is_dropped_with_a_batch_that_did_not_commit() -> None:
    store, handler, dead = MemoryStore(), Counting(), DeadLetters()
    handler.follow_up = Writes().set("t:derived", "never")

    async def other_worker_applies_it() -> None:
        await store.apply(Writes().set(KEYS.fence("counting", "clicks", 0), 9))

    handler.meddle = other_worker_applies_it
    assert await process_batch(store, KEYS, handler, [message(0, "e0")], dead) == 0
    assert await store.get("t:derived") is None
    assert handler.hooks == ["meanwhile", "aborted"]


async def test_an_event_id_seen_within_the_window_counts_once() -> None:
    store, handler, dead = MemoryStore(), Counting(), DeadLetters()
    await process_batch(store, KEYS, handler, [message(0, "same")], dead, dedup_window_ms=60_000)
    again = [message(1, "same"), message(2, "other"), message(3, "other")]
    assert await process_batch(store, KEYS, handler, again, dead, dedup_window_ms=60_000) == 1
    assert await counts(store) == {"a": 2.0}


async def test_bad_messages_become_dead_letters_and_change_nothing() -> None:
    store, handler, dead = MemoryStore(), Counting(), DeadLetters()
    bad = RawMessage(Position("clicks", 0, 0), b"k", b"\xff not json")
    envelope = RawMessage(Position("clicks", 0, 1), b"k", b'[{"type": "click"}, 3]')
    assert await process_batch(store, KEYS, handler, [bad, envelope], dead) == 0
    letters = [orjson.loads(value) for _, value in dead]
    # One dead letter per message, listing every rejected element of the envelope.
    assert [(letter["offset"], letter["rejected"]) for letter in letters] == [(0, 1), (1, 2)]
    assert [r["index"] for r in letters[1]["reasons"]] == [0, 1]
    assert "value_base64" in letters[0] and letters[1]["value"].startswith("[")
    assert await counts(store) == {}
    # The fences moved past them: a redelivery sends no second dead letter.
    await process_batch(store, KEYS, handler, [bad, envelope], dead)
    assert len(dead) == 2


class Other(Counting):
    name = "other"


async def test_an_envelope_of_10000_bad_elements_is_one_small_dead_letter_for_all_groups():
    # Issue: each bad element became a dead letter holding the whole envelope, per group
    # (a 20 KB message gave 20,000 dead letters, 403 MB).
    store, dead = MemoryStore(), DeadLetters()
    lanes = [Lane(Counting()), Lane(Other())]
    value = orjson.dumps([{"type": "click"}] * 10_000)
    big = RawMessage(Position("clicks", 0, 0), b"u" * 5000, value)
    await process_lanes(store, KEYS, lanes, [big, message(1, "e1")], dead, 0, 0, 512)
    assert len(dead) == 1
    key, raw = dead[0]
    letter = orjson.loads(raw)
    assert letter["agent"] == "counting+other" and letter["rejected"] == 10_000
    assert len(letter["reasons"]) == 100 and letter["size"] == len(value)
    assert len(raw) < 30_000 and key is not None and key.startswith(b"sha256:")
    assert await counts(store) == {"a": 2.0}


async def test_a_batch_another_worker_applied_first_is_aborted_here() -> None:
    store, handler, dead = MemoryStore(), Counting(), DeadLetters()

    async def other_worker_applies_it() -> None:
        await store.apply(Writes().set(KEYS.fence("counting", "clicks", 0), 9))

    handler.meddle = other_worker_applies_it
    assert await process_batch(store, KEYS, handler, [message(0, "e0")], dead) == 0
    # The attempt that planned sent its writes (meanwhile), the moved fence refused them.
    assert handler.hooks == ["meanwhile", "aborted"]
    assert await counts(store) == {}


async def test_a_failing_plan_aborts_and_propagates() -> None:
    store, handler, dead = MemoryStore(), Counting(), DeadLetters()

    async def fail() -> None:
        raise RuntimeError("boom")

    handler.meddle = fail
    with pytest.raises(RuntimeError, match="boom"):
        await process_batch(store, KEYS, handler, [message(0, "e0")], dead)
    assert handler.hooks == ["aborted"]
    assert await applied_offsets(store, KEYS, "counting") == {}


class ById(Counting):
    name = "by_id"

    async def plan(self, store: Store, records: list[Event]) -> Writes:
        return Writes().hincr_float("t:by_id", {event.event_id: 1.0 for event in records})


class CountingReads(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def read(self, reads: Any) -> list[Any]:
        self.reads += 1
        return await super().read(reads)


async def test_each_group_remembers_its_own_event_ids_asked_in_one_round_trip() -> None:
    store, dead = CountingReads(), DeadLetters()
    counting, by_id = Counting(), ById()
    # Only the counting group applied "same" before.
    await process_lanes(store, KEYS, [Lane(counting)], [message(0, "same")], dead, 60_000)
    batch = [message(1, "same"), message(2, "new"), message(3, "new")]
    store.reads = 0
    applied = await process_lanes(store, KEYS, [Lane(counting), Lane(by_id)], batch, dead, 60_000)
    reads = store.reads
    assert applied == {"counting": 1, "by_id": 2}
    assert await counts(store) == {"a": 2.0}
    assert {k.decode(): float(v) for k, v in (await store.hgetall("t:by_id")).items()} == {
        "same": 1.0,
        "new": 1.0,
    }
    # Both groups' seen ids in one read (the in-memory transaction reads its fences directly).
    assert reads == 1


async def test_remembered_event_ids_are_capped() -> None:
    store, handler, dead = MemoryStore(), Counting(), DeadLetters()
    batch = [message(i, f"e{i}") for i in range(5)]
    await process_lanes(store, KEYS, [Lane(handler)], batch, dead, 60_000, 2)
    assert len(await store.zrange(KEYS.seen("counting"), 0, -1)) == 2
    assert await counts(store) == {"a": 5.0}


async def test_a_fence_past_its_partitions_end_is_reported_and_changes_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store, handler, dead = MemoryStore(), Counting(), DeadLetters()
    batch = [message(offset, f"old{offset}") for offset in range(5)]
    assert await process_batch(store, KEYS, handler, batch, dead) == 5
    # The topic starts again from offset 0 (re-created; a broker that lost its data): the
    # fence (4) is past the partition's end (3), so offsets 0-2 pass for replays.
    again = [message(offset, f"new{offset}", "b") for offset in range(3)]
    with caplog.at_level("ERROR", logger="pipeline.stream.batch"):
        applied = await process_lanes(
            store, KEYS, [Lane(handler)], again, dead, partition_ends={("clicks", 0): 3}
        )
    assert applied == {"counting": 0}
    assert await counts(store) == {"a": 5.0}
    [record] = [r for r in caplog.records if "fences reset" in r.getMessage()]
    assert "clicks[0] is at offset 4 but the partition ends at 3" in record.getMessage()
    # A partition whose end lies past its fence is normal: no report.
    caplog.clear()
    with caplog.at_level("ERROR", logger="pipeline.stream.batch"):
        await process_lanes(
            store, KEYS, [Lane(handler)], batch, dead, partition_ends={("clicks", 0): 5}
        )
    assert not caplog.records


async def test_transient_errors_are_retried_and_permanent_kinds_of_them_stop_at_once() -> None:
    from redis.exceptions import AuthenticationError
    from redis.exceptions import ConnectionError as RedisConnectionError

    from pipeline.store.redis import RedisStore
    from pipeline.stream.batch import retry_transient

    failures = [RedisConnectionError("down"), RedisConnectionError("still down")]

    async def flaky() -> str:
        if failures:
            raise failures.pop(0)
        return "applied"

    transient, permanent = RedisStore.transient_errors, RedisStore.permanent_errors
    assert await retry_transient(flaky, transient, "test", 0.01, permanent) == "applied"
    calls = []

    async def wrong_password() -> str:
        calls.append(1)
        # redis-py's AuthenticationError is a ConnectionError: transient by its class.
        raise AuthenticationError("invalid username-password pair")

    assert isinstance(AuthenticationError("x"), transient)
    with pytest.raises(AuthenticationError):
        await retry_transient(wrong_password, transient, "test", 0.01, permanent)
    assert calls == [1]


class Idling(Counting):
    """Idle work that writes a mark, or raises ``fail`` when given one."""

    name = "idling"

    def __init__(self, fail: BaseException | None) -> None:
        super().__init__()
        self.fail = fail

    async def idle(self, store: Store) -> Writes | None:
        if self.fail is not None:
            raise self.fail
        return Writes().set("t:idle", "done")

    def reset(self) -> None:
        self.hooks.append("reset")


@pytest.mark.parametrize("error", [RuntimeError("idle work broke"), TransactionConflict()])
async def test_idle_work_is_applied_and_a_failing_one_resets_its_handler_only(
    error: BaseException,
) -> None:
    """A bug and a store outage (a transient error) alike: logged, the handler reset so it
    reloads from the store, the other lanes' idle work applied, nothing raised."""
    store = MemoryStore()
    broken, working = Idling(fail=error), Idling(fail=None)
    await run_idle(store, [Lane(broken), Lane(working)])
    assert await store.get("t:idle") == b"done"
    assert broken.hooks == ["reset"]
    assert working.hooks == []


class Ticks:
    """The idle loop's clock, driven by the test: each turn waits for one ``step``; counts
    the turns that began waiting, so the test knows when a turn is over."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[None] = asyncio.Queue()
        self.waits = 0

    async def __call__(self) -> None:
        self.waits += 1
        await self.queue.get()

    async def waiting(self, waits: int) -> None:
        """Return once the loop has begun its ``waits``-th wait (bounded)."""
        for _ in range(10_000):
            if self.waits >= waits:
                return
            await asyncio.sleep(0)
        raise AssertionError("the idle loop did not come back for the next turn")

    async def step(self) -> None:
        """One turn, returning once the loop waits for the next one."""
        waits = self.waits
        self.queue.put_nowait(None)
        await self.waiting(waits + 1)


async def test_the_idle_loop_runs_under_the_batch_lock_and_skips_a_turn_while_it_is_held() -> None:
    """Idle work never runs beside a batch or a rebalance's reset (they hold the same lock):
    a turn that finds the lock held is skipped, not queued behind it; a free turn holds the
    lock while the idle work runs and applies its writes."""
    store, busy, ticks = MemoryStore(), asyncio.Lock(), Ticks()
    held: list[bool] = []

    class Watching(Idling):
        async def idle(self, store: Store) -> Writes | None:
            held.append(busy.locked())
            return Writes().set("t:idle", str(len(held)))

    loop = asyncio.create_task(idle_loop(store, [Lane(Watching(fail=None))], busy, ticks))
    try:
        await ticks.waiting(1)
        await ticks.step()
        assert held == [True]
        assert await store.get("t:idle") == b"1"
        async with busy:  # a batch being applied
            await ticks.step()
            await ticks.step()
        assert held == [True]
        await ticks.step()
        assert held == [True, True]
        assert await store.get("t:idle") == b"2"
    finally:
        loop.cancel()
        with suppress(asyncio.CancelledError):
            await loop
