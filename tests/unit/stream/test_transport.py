"""The worker consumer's ``wait_first``: a delivery that need not wait runs in place, one
that waits is raced as mode races it; its topics' ``RawSchema``; a resumed partition wakes
the fetch (``pipeline.stream.transport``)."""

from __future__ import annotations

import asyncio
import inspect
from types import SimpleNamespace
from typing import Any

import faust
import pytest
from faust.types import TP, Message

from pipeline.stream.transport import (
    Consumer,
    InPlaceFirst,
    LeanSensors,
    RawSchema,
    _Resumed,
    lean_app,
)


def run(body: Any) -> Any:
    return asyncio.run(body())


def test_a_coroutine_that_never_waits_runs_in_the_callers_task() -> None:
    async def body() -> None:
        service = InPlaceFirst()
        caller = asyncio.current_task()
        ran_in: list[Any] = []

        async def deliver() -> str:
            ran_in.append(asyncio.current_task())
            return "delivered"

        suspended = asyncio.Event()
        other = suspended.wait()
        results = await service.wait_first(deliver(), other)
        assert results.results == ["delivered"]
        assert not results.stopped
        assert ran_in == [caller]
        # The other awaitable is closed, not left to warn that it was never awaited.
        assert inspect.getcoroutinestate(other) == inspect.CORO_CLOSED

    run(body)


def test_a_coroutine_that_waits_finishes_as_a_task_with_its_result() -> None:
    async def body() -> None:
        service = InPlaceFirst()
        room = asyncio.get_running_loop().create_future()
        steps: list[str] = []

        async def deliver() -> int:
            steps.append("before")
            value = await room
            steps.append("after")
            return value + 1

        asyncio.get_running_loop().call_later(0.01, room.set_result, 41)
        results = await service.wait_first(deliver(), asyncio.Event().wait())
        assert results.results == [42]
        assert steps == ["before", "after"]

    run(body)


def test_a_waiting_coroutine_loses_to_a_suspension_and_is_cancelled() -> None:
    async def body() -> None:
        service = InPlaceFirst()
        room = asyncio.get_running_loop().create_future()
        suspended = asyncio.Event()
        seen: list[str] = []

        async def deliver() -> None:
            try:
                await room
                seen.append("delivered")
            except asyncio.CancelledError:
                seen.append("cancelled")
                raise

        async def suspension() -> str:
            await suspended.wait()
            return "suspended"

        asyncio.get_running_loop().call_soon(suspended.set)
        results = await service.wait_first(deliver(), suspension())
        assert results.results == ["suspended"]
        # mode cancels the losers on its way out; the cancellation reaches the coroutine.
        await asyncio.sleep(0)
        assert seen == ["cancelled"]
        # As a task cancelled while it waits, the wait itself is cancelled with it.
        assert room.cancelled()

    run(body)


@pytest.mark.parametrize("waits_first", [False, True])
def test_an_error_of_the_coroutine_is_raised(waits_first: bool) -> None:
    async def body() -> None:
        service = InPlaceFirst()

        async def deliver() -> None:
            if waits_first:
                await asyncio.sleep(0)
            raise ValueError("no such channel")

        other = asyncio.Event().wait()
        with pytest.raises(ValueError, match="no such channel"):
            await service.wait_first(deliver(), other)
        if not waits_first:
            assert inspect.getcoroutinestate(other) == inspect.CORO_CLOSED

    run(body)


def test_a_stopped_service_races_as_mode_does() -> None:
    async def body() -> None:
        service = InPlaceFirst()
        service._stopped.set()
        ran: list[bool] = []

        async def deliver() -> None:
            ran.append(True)

        results = await service.wait_first(deliver(), asyncio.Event().wait())
        # mode reports a stopped service as such, whatever finished.
        assert results.stopped
        assert results.results == []

    run(body)


def test_a_carried_coroutine_that_swallows_its_cancellation_finishes_as_a_task_would() -> None:
    async def body() -> None:
        room = asyncio.get_running_loop().create_future()

        async def deliver() -> str:
            try:
                await room
            except asyncio.CancelledError:
                return "kept going"
            return "delivered"

        started = deliver()
        # Run up to its first wait, as wait_first does before it hands the rest to a task.
        carried = asyncio.ensure_future(_Resumed(started, started.send(None)))
        await asyncio.sleep(0)
        carried.cancel()
        # The coroutine decided not to stop: the task ends with its result, not cancelled.
        assert await carried == "kept going"

    run(body)


def test_closing_a_carried_coroutine_closes_the_coroutine() -> None:
    steps: list[str] = []

    async def deliver() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            steps.append("closed")

    async def body() -> None:
        started = deliver()
        waits_on = started.send(None)
        awaiting = _Resumed(started, waits_on).__await__()
        next(awaiting)
        awaiting.close()
        assert inspect.getcoroutinestate(started) == inspect.CORO_CLOSED

    run(body)
    assert steps == ["closed"]


@pytest.mark.parametrize(
    ("key", "value"),
    [(b"user-1", b'{"a": 1}'), (None, b"x"), (b"k", None), (None, None), (b"", b"")],
)
def test_the_raw_schema_makes_the_event_faust_makes_with_raw_serializers(
    key: bytes | None, value: bytes | None
) -> None:
    app = faust.App("raw-schema-test", broker="memory://", store="memory://")
    message = Message("events", 3, 17, 1234.5, 0, [("h", b"v")], key, value, None)
    stock = faust.Schema(key_serializer="raw", value_serializer="raw").compile(app)
    ours = RawSchema().compile(app)

    async def both() -> tuple[Any, Any]:
        return await stock(message), await ours(message)

    expected, got = run(both)
    assert (got.key, got.value, got.headers, got.message) == (
        expected.key,
        expected.value,
        expected.headers,
        expected.message,
    )
    assert (got.key, got.value) == (key, value)


def paused_consumer(monkeypatch: pytest.MonkeyPatch) -> tuple[Consumer, Any, list[bool]]:
    """The worker's consumer with one partition paused by a full stream buffer (only the
    state ``on_buffer_drop`` and ``_wait_next_records`` use), its thread a stand-in, and
    Faust's own fetch replaced by one that says what it was asked."""
    from faust.transport import consumer as faust_consumer

    async def faust_wait(self: Any, timeout: float) -> Any:
        return "fetched", set(self._active_partitions)

    monkeypatch.setattr(faust_consumer.Consumer, "_wait_next_records", faust_wait)
    tp = TP("clicks", 3)
    consumer = Consumer.__new__(Consumer)
    consumer._buffered_partitions = {tp}
    consumer._active_partitions = set()
    consumer._paused_partitions = set()
    consumer.app = SimpleNamespace(client_only=False, in_recovery=False)
    woken: list[bool] = []
    consumer._thread = SimpleNamespace(wake_fetch=lambda: woken.append(True))
    return consumer, tp, woken


def test_a_resumed_partition_wakes_the_fetch_under_way(monkeypatch: pytest.MonkeyPatch) -> None:
    consumer, tp, woken = paused_consumer(monkeypatch)
    consumer.on_buffer_drop(tp)
    assert tp in consumer._active_partitions and woken == [True]
    consumer.on_buffer_drop(tp)  # not paused: nothing to resume, nothing to wake
    assert woken == [True]


def test_with_every_partition_paused_a_resume_ends_the_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Faust sleeps a second when no partition may be fetched; this consumer fetches as soon
    as one is resumed (well within that second)."""

    async def body() -> None:
        consumer, tp, _ = paused_consumer(monkeypatch)
        waiting = asyncio.ensure_future(consumer._wait_next_records(5.0))
        for _ in range(5):
            await asyncio.sleep(0)
        assert not waiting.done()
        consumer.on_buffer_drop(tp)
        assert await asyncio.wait_for(waiting, timeout=0.5) == ("fetched", {tp})

    run(body)


class RecordingSensor(faust.Sensor):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def on_message_in(self, *args: Any) -> None:
        self.calls.append("message_in")

    def on_stream_event_in(self, *args: Any) -> None:
        self.calls.append("event_in")

    def on_stream_event_out(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append("event_out")

    def on_message_out(self, *args: Any) -> None:
        self.calls.append("message_out")

    def on_rebalance_start(self, app: Any) -> dict:
        self.calls.append("rebalance")
        return {}

    def on_topic_buffer_full(self, tp: Any) -> None:
        self.calls.append("buffer_full")


def test_a_lean_app_keeps_per_message_hooks_from_its_sensors_but_not_the_rest() -> None:
    app = faust.App("lean-sensors-test", broker="kafka://127.0.0.1:9", store="memory://")
    lean_app(app)
    assert isinstance(app.sensors, LeanSensors) and app.conf.cython_optimizations
    sensor = RecordingSensor()
    app.sensors.add(sensor)
    tp, message, event = TP("clicks", 0), object(), object()
    app.sensors.on_message_in(tp, 1, message)
    assert app.sensors.on_stream_event_in(tp, 1, None, event) is None
    app.sensors.on_stream_event_out(tp, 1, None, event, None)
    app.sensors.on_message_out(tp, 1, message)
    assert sensor.calls == []
    # What the consumer's check for stalled streams reads is still recorded.
    assert tp in app.monitor.stream_inbound_time
    app.sensors.on_rebalance_start(app)
    app.sensors.on_topic_buffer_full(tp)
    assert sensor.calls == ["rebalance", "buffer_full"]


def test_a_lean_apps_producer_buffer_waits_to_ebb_only_past_its_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from faust.transport.producer import ProducerBuffer

    waited: list[int] = []

    async def stock_wait(self: Any) -> None:
        waited.append(self.pending.qsize())

    monkeypatch.setattr(ProducerBuffer, "wait_until_ebb", stock_wait)

    async def body() -> None:
        app = faust.App("lean-buffer-test", broker="kafka://127.0.0.1:9", store="memory://")
        lean_app(app)
        buffer = app.producer.buffer
        for _ in range(buffer.max_messages):
            buffer.pending.put_nowait(object())
        await buffer.wait_until_ebb()
        assert waited == []
        buffer.pending.put_nowait(object())
        await buffer.wait_until_ebb()
        assert waited == [buffer.max_messages + 1]

    run(body)


def test_only_the_workers_app_is_lean_not_the_bare_baseline() -> None:
    from pipeline.core.settings import load_settings
    from pipeline.stream.app import faust_app

    settings = load_settings()
    worker = faust_app(settings, "lean-worker-test")
    bare = faust_app(settings, "lean-bare-test", tuned=False)
    assert isinstance(worker.sensors, LeanSensors)
    assert not isinstance(bare.sensors, LeanSensors)
    assert not bare.conf.cython_optimizations
