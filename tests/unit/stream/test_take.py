"""``take_batches``: batch sizes and lingering, reading while a batch is applied, acks only
after a batch is applied, stale events of a previous rebalance, errors and stopping. A
stand-in stream with the part of ``faust.Stream`` the function uses, and simulated time: a
timed wait that nothing ends moves the clock by its timeout."""

from __future__ import annotations

import asyncio
from contextlib import aclosing
from types import SimpleNamespace
from typing import Any

import pytest

from pipeline.stream.take import take_batches

pytestmark = pytest.mark.asyncio

LINGER_S = 0.1


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Stream:
    """Events put on ``queue`` (an exception put there is raised by the stream)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.acked: list[int] = []
        self.enable_acks = True
        self.stopped = asyncio.Event()
        self.app = SimpleNamespace(consumer_generation_id=1)
        self.timed_waits: list[float] = []

    @property
    def should_stop(self) -> bool:
        return self.stopped.is_set()

    async def events(self) -> Any:
        while True:
            item = await self.queue.get()
            if isinstance(item, Exception):
                raise item
            yield item

    async def ack(self, event: Any) -> None:
        self.acked.append(event.n)

    async def wait_for_stopped(self, event: asyncio.Event, timeout: float | None = None) -> bool:
        # Let the reader take whatever is queued, then: done if that set the event; else a
        # timed wait passes its timeout on the simulated clock, an untimed one really waits.
        for _ in range(20):
            await asyncio.sleep(0)
        if event.is_set() or self.stopped.is_set():
            return self.stopped.is_set()
        if timeout is not None:
            self.timed_waits.append(timeout)
            self.clock.now += timeout
            return False
        first = [asyncio.ensure_future(event.wait()), asyncio.ensure_future(self.stopped.wait())]
        _, pending = await asyncio.wait(first, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        return self.stopped.is_set()

    def put(self, *numbers: int, generation: int = 1, size: int = 0) -> None:
        for n in numbers:
            self.queue.put_nowait(
                SimpleNamespace(n=n, size=size, message=SimpleNamespace(generation_id=generation))
            )


def numbers(batch: list[Any]) -> list[int]:
    return [event.n for event in batch]


async def handed_over(
    batches: Any, clock: Clock, count: int, applying: Any = None
) -> list[tuple[list[int], float]]:
    """The first ``count`` batches and when each was handed over (simulated seconds since
    the start); ``applying(k)`` runs as the body of the k-th batch (k from 1) but the last."""
    handed: list[tuple[list[int], float]] = []
    async with aclosing(batches):
        async for batch in batches:
            handed.append((numbers(batch), clock.now - 1000.0))
            if len(handed) == count:
                break
            if applying is not None:
                await applying(len(handed))
    return handed


async def turns(n: int = 20) -> None:
    """Let other tasks (the reader) run for ``n`` turns of the event loop."""
    for _ in range(n):
        await asyncio.sleep(0)


async def test_a_backlog_is_taken_in_full_batches_at_once_and_the_rest_after_the_linger():
    clock = Clock()
    stream = Stream(clock)
    stream.put(*range(10))
    handed = await handed_over(take_batches(stream, 4, LINGER_S, clock=clock), clock, 3)
    assert handed == [([0, 1, 2, 3], 0.0), ([4, 5, 6, 7], 0.0), ([8, 9], pytest.approx(LINGER_S))]


async def test_events_read_while_a_batch_is_applied_start_the_next_batch_without_waiting():
    # Faust's take_events would wait LINGER_S again after the first batch.
    clock = Clock()
    stream = Stream(clock)
    stream.put(0)

    async def applying(_: int) -> None:
        # Applying the batch takes longer than the linger; events arrive meanwhile.
        stream.put(1, 2)
        await turns()
        clock.now += 2 * LINGER_S

    batches = take_batches(stream, 100, LINGER_S, clock=clock)
    handed = await handed_over(batches, clock, 2, applying)
    assert handed == [([0], pytest.approx(LINGER_S)), ([1, 2], pytest.approx(3 * LINGER_S))]
    assert stream.timed_waits == [pytest.approx(LINGER_S)]


async def test_behind_a_backlog_a_batch_waits_after_the_previous_one_to_read_it():
    clock = Clock()
    stream = Stream(clock)
    stream.put(0)
    backlog = {"waiting": 0}

    async def applying(k: int) -> None:
        # Applying takes two lingers; one event is read meanwhile, at its start.
        stream.put(k * 10)
        await turns()
        clock.now += 2 * LINGER_S
        # Then: two more wait in the broker; then none (caught up); then one more.
        backlog["waiting"] = {1: 2, 2: 0, 3: 1}[k]

    batches = take_batches(
        stream, 100, LINGER_S, waiting=lambda read: backlog["waiting"], clock=clock
    )
    handed = await handed_over(batches, clock, 4, applying)
    assert handed[0] == ([0], pytest.approx(LINGER_S))
    # Behind: not at once, though its event is older than a linger; up to a linger after
    # the first was handed back (nothing else came).
    assert handed[1] == ([10], pytest.approx(4 * LINGER_S))
    # Caught up: at once.
    assert handed[2] == ([20], pytest.approx(6 * LINGER_S))
    assert handed[3][1] == pytest.approx(9 * LINGER_S)


async def test_behind_a_backlog_a_batch_goes_as_soon_as_the_backlog_is_read():
    clock = Clock()
    stream = Stream(clock)
    stream.put(0)
    waiting = {"n": 0}

    async def fetched() -> None:
        # Within the stand-in's wait (its timed waits end after 20 turns).
        await turns(3)
        waiting["n"] = 0
        stream.put(2, 3)

    async def applying(_: int) -> None:
        stream.put(1)
        await turns()
        clock.now += 2 * LINGER_S
        waiting["n"] = 2  # two more in the broker, fetched a moment later
        asyncio.ensure_future(fetched())

    batches = take_batches(stream, 100, LINGER_S, waiting=lambda read: waiting["n"], clock=clock)
    handed = await handed_over(batches, clock, 2, applying)
    # Handed over when the two were read, with no timed wait for them.
    assert handed == [([0], pytest.approx(LINGER_S)), ([1, 2, 3], pytest.approx(3 * LINGER_S))]


async def test_the_reader_stays_at_most_one_batch_ahead():
    clock = Clock()
    stream = Stream(clock)
    stream.put(*range(20))
    async with aclosing(take_batches(stream, 3, LINGER_S, clock=clock)) as batches:
        async for batch in batches:
            await turns(50)
            # The batch in hand, the next one read, the rest still queued.
            assert numbers(batch) == [0, 1, 2]
            assert stream.queue.qsize() == 20 - 6
            break


async def test_events_are_acknowledged_only_after_their_batch_is_applied():
    clock = Clock()
    stream = Stream(clock)
    stream.put(*range(6))
    seen: list[list[int]] = []
    async with aclosing(take_batches(stream, 3, LINGER_S, clock=clock)) as batches:
        async for batch in batches:
            seen.append(numbers(batch))
            if len(seen) == 1:
                assert stream.acked == []  # in hand: not yet
            else:
                assert stream.acked == [0, 1, 2]
                # Abandoned mid-way (a stopping worker): this batch stays unacknowledged.
                break
    assert seen == [[0, 1, 2], [3, 4, 5]]
    assert stream.acked == [0, 1, 2]
    assert stream.enable_acks is True  # restored


async def test_events_of_a_previous_rebalance_are_dropped_unacknowledged():
    clock = Clock()
    stream = Stream(clock)
    stream.put(0, 1, generation=1)
    stream.put(2, 3, generation=2)
    stream.app.consumer_generation_id = 2
    seen: list[list[int]] = []
    async with aclosing(take_batches(stream, 10, LINGER_S, clock=clock)) as batches:
        async for batch in batches:
            seen.append(numbers(batch))
            if len(seen) == 2:
                break
            stream.put(4, generation=2)
    assert seen == [[2, 3], [4]]
    # The batch of the current generation was acknowledged, the stale events never.
    assert stream.acked == [2, 3]


async def test_the_streams_error_ends_the_batches(caplog):
    clock = Clock()
    stream = Stream(clock)
    stream.put(0)
    stream.queue.put_nowait(RuntimeError("broken stream"))
    seen: list[list[int]] = []
    with pytest.raises(RuntimeError, match="broken stream"):
        async with aclosing(take_batches(stream, 10, LINGER_S, clock=clock)) as batches:
            async for batch in batches:
                seen.append(numbers(batch))
    # What was read before the error is neither applied nor acknowledged: it comes again.
    assert seen == [] and stream.acked == []
    # Raised, not also logged.
    assert "broken stream" not in caplog.text
    assert stream.enable_acks is True


async def test_a_stopping_stream_ends_the_batches_and_leaves_what_was_read_unacknowledged():
    clock = Clock()
    stream = Stream(clock)
    stream.put(0)
    seen: list[list[int]] = []

    async def consume() -> None:
        async for batch in take_batches(stream, 10, LINGER_S, clock=clock):
            seen.append(numbers(batch))
            stream.put(1)  # read, never handed over: the stream stops first
            for _ in range(20):
                await asyncio.sleep(0)
            stream.stopped.set()

    await asyncio.wait_for(consume(), timeout=5)
    assert seen == [[0]]
    assert stream.acked == [0]
    assert stream.enable_acks is True


async def test_an_error_of_the_stream_while_the_batches_stop_is_logged(caplog):
    clock = Clock()
    stream = Stream(clock)
    stream.put(0)
    async with aclosing(take_batches(stream, 10, LINGER_S, clock=clock)) as batches:
        async for _ in batches:
            stream.queue.put_nowait(RuntimeError("broken while stopping"))
            for _ in range(20):
                await asyncio.sleep(0)
            stream.stopped.set()
    assert "broken while stopping" in caplog.text
    assert stream.acked == [0]


async def test_an_idle_stream_waits_untimed_until_an_event_or_a_stop():
    clock = Clock()
    stream = Stream(clock)

    async def consume() -> list[list[int]]:
        return [numbers(batch) async for batch in take_batches(stream, 10, LINGER_S, clock=clock)]

    task = asyncio.ensure_future(consume())
    for _ in range(50):
        await asyncio.sleep(0)
    assert not task.done() and stream.timed_waits == []  # no polling while nothing comes
    stream.stopped.set()
    assert await asyncio.wait_for(task, timeout=5) == []


@pytest.mark.parametrize(
    ("max_size", "linger_s", "max_bytes"), [(0, 0.1, 0), (10, -1.0, 0), (10, 0.1, -1)]
)
async def test_bad_sizes_are_refused(max_size: int, linger_s: float, max_bytes: int):
    with pytest.raises(ValueError, match="max_size"):
        async for _ in take_batches(Stream(Clock()), max_size, linger_s, max_bytes=max_bytes):
            pass


async def test_a_backlog_is_taken_in_batches_of_at_most_max_bytes():
    """Envelopes weigh what they hold: a batch closes at ``max_bytes`` as at ``max_size``,
    and a message larger than the bound goes alone, never dropped or split."""
    clock = Clock()
    stream = Stream(clock)
    stream.put(0, 1, 2, 3, 4, size=40)
    stream.put(5, size=250)
    stream.put(6, 7, size=10)
    batches = take_batches(
        stream, 4, LINGER_S, clock=clock, max_bytes=100, size=lambda event: event.size
    )
    handed = await handed_over(batches, clock, 4)
    assert handed == [
        ([0, 1], 0.0),  # a third would pass 100 bytes
        ([2, 3], 0.0),
        ([4], 0.0),  # the next one alone is over the bound
        ([5], 0.0),
    ]


async def test_the_reader_stops_reading_ahead_at_max_bytes():
    clock = Clock()
    stream = Stream(clock)
    stream.put(*range(10), size=30)
    batches = take_batches(stream, 100, LINGER_S, clock=clock, max_bytes=60, size=lambda e: e.size)
    async with aclosing(batches):
        async for batch in batches:
            await turns(50)
            # The batch in hand (two), the next two read, the rest still queued.
            assert numbers(batch) == [0, 1]
            assert stream.queue.qsize() == 10 - 4
            break


async def test_the_caller_sees_the_events_read_ahead_while_it_applies_a_batch():
    """What the worker counts as waiting behind a batch, whatever its fetches said."""
    clock = Clock()
    stream = Stream(clock)
    stream.put(*range(7))
    ahead: list[Any] = []
    async with aclosing(take_batches(stream, 3, LINGER_S, clock=clock, buffer=ahead)) as batches:
        async for batch in batches:
            await turns(50)
            assert numbers(batch) == [0, 1, 2]
            assert numbers(ahead) == [3, 4, 5]  # one batch ahead, no more
            break
    with pytest.raises(ValueError, match="empty"):
        async for _ in take_batches(Stream(clock), 3, LINGER_S, buffer=[object()]):
            pass
