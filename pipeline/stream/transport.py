"""Faust's aiokafka transport, with the consumer's fetch wait set by the worker.

Faust builds its aiokafka consumer with ``fetch_max_wait_ms=1500``. Apache Kafka answers a
fetch as soon as a message arrives, so that wait costs nothing there; the embedded broker
(Tansu) holds every fetch for the whole wait, so a message could sit 1.5 s before a worker
sees it. Workers therefore use this transport (scheme ``streamrec-kafka://``), whose
consumer waits ``worker_fetch_max_wait_ms`` at most. The same consumer tells the worker's
metrics what its fetches saw (:meth:`ConsumerThread.fetch_state`): consumer lag needs no
request of its own.

The same consumer hands each fetched message to the streams without a race of tasks when it
can (:meth:`InPlaceFirst.wait_first`): Faust awaits, for every message, the first of "the
message is delivered to the streams' buffers" and "the flow is suspended" (a rebalance),
as tasks raced by ``asyncio.wait`` (about 87 microseconds a message on the development
machine, a third of what a bare Faust agent spends per message). A delivery with room in
the buffers finishes without ever waiting, so the consumer runs it in place first and
races it as before only once it has to wait.

While a stream's buffer is under pressure, Faust takes its partitions out of the set the
consumer's fetch asks for, and puts them back once the buffer drains (``on_buffer_drop``).
The fetch under way does not notice: it waits up to a second for records of the partitions
it was given, though those of the resumed partition are already in the consumer; and with
every partition paused Faust sleeps a second before it looks again. So every backlog ended
with a second of nothing (the last records of a burst arrived a second late). This
consumer wakes the fetch under way when a partition is resumed
(:func:`wake_fetch_waiters`), and it returns them at once; with every partition paused, it
waits for a resume instead of the whole second.

The worker's topics carry bytes the handlers decode themselves, so their :class:`RawSchema`
builds each Faust event straight from the message, as Faust's schema does with the "raw"
serializers, without looking the serializers up for every message.

:func:`lean_app` takes out what a worker pays per message for nothing it uses (a no-op
agent reading through ``take_batches``, development machine: 34,000 -> 45,000 messages/s):
the statistics of Faust's Monitor sensor (four calls per message; the worker's metrics are
its own, ``pipeline.stream.metrics``; only the time each partition's stream last took an
event is kept, which Faust's check for stalled streams reads), the producer buffer's check
before each delivery (two settings lookups per message, for a buffer only tables use), and
the stream iterator's wait for every message already in the stream's queue (Faust's own
opt-in ``cython_optimizations``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from contextlib import suppress
from time import monotonic
from typing import Any, cast

import faust
from faust.sensors.base import SensorDelegate
from faust.transport.drivers import TRANSPORTS
from faust.transport.drivers import aiokafka as driver
from mode.services import Service, WaitArgT, WaitResults
from mode.utils.times import Seconds


class RawSchema(faust.Schema):
    """Keys and values as the bytes the message carries (None when absent): what Faust's
    schema gives with ``key_serializer="raw"`` and ``value_serializer="raw"``, at a third of
    the cost per message (tests/unit/stream/test_transport.py compares the two)."""

    def __init__(self) -> None:
        super().__init__(key_serializer="raw", value_serializer="raw")

    def compile(self, app: Any, **_: Any) -> Any:
        # What ``app.create_event`` builds, without its settings lookup per message (1.2 of
        # its 1.5 microseconds).
        event_class = app.conf.Event

        async def decode(message: Any, *, propagate: bool = False) -> Any:
            return event_class(app, message.key, message.value, message.headers, message)

        return decode


class LeanSensors(SensorDelegate):
    """Faust's sensor delegate without the per-message hooks: the sensors (Faust's Monitor)
    still see rebalances, commits and full buffers, but not each message and event. Only
    the time a partition's stream last took an event is still recorded in the Monitor: the
    consumer's check for stalled streams and commits reads it (without it, every partition
    behind a backlog was reported stalled after five minutes, and real stalls hidden)."""

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        return None

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> None:
        self.app.monitor.stream_inbound_time[tp] = monotonic()
        return None

    def on_stream_event_out(
        self, tp: Any, offset: int, stream: Any, event: Any, state: Any = None
    ) -> None:
        return None

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        return None


def lean_app(app: faust.App) -> None:
    """Make a new ``app`` (before its agents and streams exist) skip per-message work the
    worker does not use (the module docstring lists it)."""
    app.conf.cython_optimizations = True
    app.sensors = LeanSensors(app)
    buffer = app.producer.buffer
    if app.conf.producer_threaded:
        return
    pending = buffer.pending
    full_wait = buffer.wait_until_ebb

    async def wait_until_ebb() -> None:
        # Faust's test, with the queue's size read directly instead of through the settings.
        if pending.qsize() > buffer.max_messages:
            await full_wait()

    buffer.wait_until_ebb = wait_until_ebb  # type: ignore[method-assign]


SCHEME = "streamrec-kafka"
# The app attribute that carries the wait (set by ``pipeline.stream.app.faust_app``).
FETCH_WAIT_ATTRIBUTE = "streamrec_fetch_max_wait_ms"
# The app attribute where the consumer thread puts itself once its consumer exists.
CONSUMER_ATTRIBUTE = "streamrec_consumer_thread"


class ConsumerThread(driver.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka reads this when it starts its fetcher; Faust offers no setting for it.
        consumer._fetch_max_wait_ms = getattr(self.app, FETCH_WAIT_ATTRIBUTE)
        setattr(self.app, CONSUMER_ATTRIBUTE, self)
        return consumer

    def wake_fetch(self) -> None:
        """Have the fetch under way look again at the partitions it may return (safe from
        any thread; nothing happens before the consumer exists)."""
        consumer = self._consumer
        loop = self.thread_loop
        if consumer is not None and loop is not None and not loop.is_closed():
            # The thread may close its loop right now (a stop): then there is nothing to wake.
            with suppress(RuntimeError):
                loop.call_soon_threadsafe(wake_fetch_waiters, consumer)

    def fetch_state(self) -> dict[tuple[str, int], tuple[int | None, int | None]]:
        """(topic, partition) -> (high-water mark, fetch position) of every assigned
        partition, as the consumer's last fetch responses left them (None: not known yet).

        Reads aiokafka's partition states without a request and without the consumer's
        thread: plain attribute reads, safe from the metrics server's thread.
        """
        consumer = self._consumer
        subscription = None if consumer is None else consumer._subscription.subscription
        assignment = None if subscription is None else subscription.assignment
        if assignment is None:
            return {}
        found: dict[tuple[str, int], tuple[int | None, int | None]] = {}
        for tp in list(assignment.tps):
            state = assignment.state_value(tp)
            if state is None:
                continue
            try:
                position = state.position if state.has_valid_position else None
            except AssertionError:
                # Reset by the consumer's thread between the two reads.
                position = None
            found[(tp.topic, tp.partition)] = (state.highwater, position)
        return found


class InPlaceFirst(Service):
    """A mode service whose :meth:`wait_first` runs its first coroutine in place (mixed
    into the worker's consumer: the module docstring says why)."""

    async def wait_first(self, *coros: WaitArgT, timeout: Seconds | None = None) -> WaitResults:
        """What ``mode.Service.wait_first`` returns, with the first awaitable run in place up
        to its first wait when it is a coroutine: finished there, it is the one winner and
        the others are closed unawaited (a finished delivery is all the consumer's fetch
        loop, the only caller, waits for); once it waits, it is raced against the others as
        mode races it. An error it raises is raised, as mode raises it."""
        first = coros[0] if coros else None
        if (
            timeout is not None
            or not asyncio.iscoroutine(first)
            or self._stopped.is_set()
            or self._crashed.is_set()
        ):
            # mode's own signature defaults its Seconds to None.
            return await super().wait_first(*coros, timeout=cast(Seconds, timeout))
        try:
            waits_on = first.send(None)
        except StopIteration as finished:
            _close(coros[1:])
            return WaitResults([first], [finished.value], False)
        except BaseException:
            _close(coros[1:])
            raise
        carried = asyncio.ensure_future(_Resumed(first, waits_on))
        return await super().wait_first(carried, *coros[1:], timeout=cast(Seconds, timeout))


class Consumer(InPlaceFirst, driver.Consumer):
    # Set when a paused partition is resumed (created on first use, on the consumer's loop).
    _resumed: asyncio.Event | None = None

    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def _resumed_signal(self) -> asyncio.Event:
        if self._resumed is None:
            self._resumed = asyncio.Event()
        return self._resumed

    def on_buffer_drop(self, tp: Any) -> None:
        """Faust's resume of a partition whose stream buffer had filled, then a wake of the
        fetch under way, or of the wait for a partition to fetch from (the module docstring
        says why)."""
        resumed = tp in self._buffered_partitions
        super().on_buffer_drop(tp)
        if resumed:
            self._resumed_signal().set()
            cast(ConsumerThread, self._thread).wake_fetch()

    async def _wait_next_records(self, timeout: float) -> Any:
        """Faust's, except that with every partition paused it waits for a resume (a second
        at most, as Faust sleeps) instead of a whole second."""
        if self.flow_active and not self.app.client_only and not self._get_active_partitions():
            resumed = self._resumed_signal()
            resumed.clear()
            with suppress(asyncio.TimeoutError):
                await asyncio.wait_for(resumed.wait(), timeout=1.0)
            if not self._get_active_partitions():
                return {}, self._get_active_partitions()
        return await super()._wait_next_records(timeout)


def wake_fetch_waiters(consumer: Any) -> None:
    """Wake whatever waits in ``consumer``'s fetcher for new records (on its loop): a
    ``fetched_records`` call then looks at the records it holds again, for the partitions it
    was given, as they are now."""
    fetcher = getattr(consumer, "_fetcher", None)
    for waiter in list(getattr(fetcher, "_fetch_waiters", ())):
        if not waiter.done():
            waiter.set_result(None)


def _close(awaitables: tuple[WaitArgT, ...]) -> None:
    """Close the coroutines among ``awaitables`` that will not be awaited."""
    for awaitable in awaitables:
        if asyncio.iscoroutine(awaitable):
            awaitable.close()


class _Resumed:
    """An awaitable that goes on with a started coroutine: it hands the coroutine's pending
    wait to the task that awaits it, then sends the coroutine what the task sends (or throws
    what it throws, a cancellation), until the coroutine returns."""

    def __init__(self, started: Coroutine[Any, Any, Any], waits_on: Any) -> None:
        self.started = started
        self.waits_on = waits_on

    def __await__(self) -> Generator[Any, Any, Any]:
        waits_on = self.waits_on
        while True:
            sent, error = None, None
            try:
                sent = yield waits_on
            except GeneratorExit:
                self.started.close()
                raise
            except BaseException as thrown:
                error = thrown
            try:
                waits_on = self.started.send(sent) if error is None else self.started.throw(error)
            except StopIteration as finished:
                return finished.value


class Transport(driver.Transport):
    Consumer = Consumer


def register() -> None:
    """Make ``streamrec-kafka://`` a Faust transport (idempotent)."""
    TRANSPORTS.aliases[SCHEME] = f"{__name__}:Transport"


def fetch_state_of(app: Any) -> dict[tuple[str, int], tuple[int | None, int | None]]:
    """:meth:`ConsumerThread.fetch_state` of ``app``'s consumer; empty before it exists."""
    thread = getattr(app, CONSUMER_ATTRIBUTE, None)
    return {} if thread is None else thread.fetch_state()
