"""The Faust application: topics from ``topics.yaml``, one fused agent for the worker's groups.

A worker that runs several agent groups reads each topic once: one Faust agent subscribes to
every topic its groups read, each message is taken and decoded once, every group plans its
part of the batch, and all their writes and fences go in one transaction
(``pipeline.stream.batch.process_lanes``). Workers that run the same set of agent groups
share one consumer group (``{app_id}.{group+group}``), so an operator scales a group (or a
set of groups) by starting more workers with the same ``--agents``; groups deployed in
separate workers each have their own consumer group and fences. No Faust tables:
authoritative state lives in Redis behind offset fences (the embedded broker loses Faust
table updates on recovery).
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from contextlib import aclosing
from functools import partial
from pathlib import Path
from typing import Any

import faust

from pipeline.core.keys import Keys
from pipeline.core.settings import Settings
from pipeline.core.topics import Topics, TopicSpec
from pipeline.features.registry import declared_topics, feature
from pipeline.store.redis import connect
from pipeline.stream import transport
from pipeline.stream.ahead import DecodeAhead
from pipeline.stream.batch import Lane, RawMessage, idle_loop, process_lanes, retry_transient
from pipeline.stream.fence import Position
from pipeline.stream.handler import Handler
from pipeline.stream.kafka import faust_credentials
from pipeline.stream.metrics import LAG
from pipeline.stream.take import take_batches

log = logging.getLogger(__name__)

# Exit status of a worker stopped by a batch error that waiting cannot cure (EX_SOFTWARE).
FATAL_EXIT_CODE = 70
# Seconds between two calls of the handlers' idle work (``Handler.idle``).
IDLE_EVERY_S = 1.0


def stop_worker(reason: str) -> None:
    """End the worker process at once with :data:`FATAL_EXIT_CODE`, logging ``reason`` and
    the exception being handled; nothing more is acknowledged."""
    log.critical("%s; stopping the worker", reason, exc_info=True)
    logging.shutdown()
    os._exit(FATAL_EXIT_CODE)


def make_handler(group: str, settings: Settings, keys: Keys) -> Handler[Any]:
    """The handler of agent group ``group``, built by its feature's factory."""
    factory = feature(group).handler
    if factory is None:
        raise ValueError(f"feature {group!r} has no agent group")
    return factory(settings, keys)


def make_lanes(settings: Settings, keys: Keys, groups: list[str], topics: Topics) -> list[Lane]:
    """A lane per agent group that reads a topic: its handler and the topics it reads."""
    lanes = []
    for group in groups:
        specs = topics.for_agent(group)
        if specs:
            handler = make_handler(group, settings, keys)
            lanes.append(Lane(handler, frozenset(spec.name for spec in specs)))
    return lanes


def phases_of(lanes: list[Lane]) -> list[list[Lane]]:
    """The lanes in the order a batch applies them: one transaction per phase, ascending."""
    return [
        [lane for lane in lanes if lane.handler.phase == phase]
        for phase in sorted({lane.handler.phase for lane in lanes})
    ]


def holds_every_partition(
    specs: Iterable[TopicSpec],
    held: set[tuple[str, int]],
    broker_partitions: Callable[[str], int | None],
) -> bool:
    """Whether ``held`` (topic, partition) pairs are every partition of the topics of
    ``specs``: as many as the broker says a topic has (``broker_partitions``, None when it
    has not said), or as ``topics.yaml`` declares, whichever is more. A broker with more
    partitions than declared (added there, not in the file) lets other workers hold the
    extra ones; one with fewer can never assign the missing ones: both keep the guards on."""
    every: set[tuple[str, int]] = set()
    for spec in specs:
        count = max(spec.partitions, broker_partitions(spec.name) or 0)
        every.update((spec.name, partition) for partition in range(count))
    return bool(every) and every <= held


def consumer_group_id(settings: Settings, groups: list[str]) -> str:
    return f"{settings.app_id}.{'+'.join(groups)}"


def faust_app(settings: Settings, app_id: str, tuned: bool = True) -> faust.App:
    """A Faust app with the project's broker, consumer and producer settings; ``tuned``
    adds the worker's fetch and buffer sizes (``pipeline bench ingest`` runs its bare
    baseline agent untuned: Faust's defaults, which suit an agent doing nothing best)."""
    extra: dict[str, Any] = {}
    if tuned:
        transport.register()
        extra = {
            "broker_max_poll_records": settings.worker_max_poll_records,
            "stream_buffer_maxsize": settings.worker_stream_buffer,
            "broker_consumer": settings.faust_broker.replace("kafka://", f"{transport.SCHEME}://"),
        }
    # Faust wants a data directory even with in-memory stores; keep it out of the work tree.
    datadir = Path(tempfile.gettempdir()) / "pipeline-faust" / app_id
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        app_id,
        broker=settings.faust_broker,
        store="memory://",
        datadir=datadir,
        key_serializer="raw",
        value_serializer="raw",
        # Faust's own web server is not used (metrics: PIPELINE_WORKER_METRICS_PORT).
        web_enabled=False,
        web_bind="127.0.0.1",
        broker_session_timeout=settings.broker_session_timeout_s,
        broker_rebalance_timeout=settings.broker_rebalance_timeout_s,
        broker_heartbeat_interval=settings.broker_heartbeat_interval_s,
        consumer_auto_offset_reset="earliest",
        topic_allow_declare=False,
        topic_disable_leader=True,
        producer_acks=-1,
        # TLS/SASL as every other Kafka client of the pipeline (pipeline.stream.kafka).
        broker_credentials=faust_credentials(settings),
        **extra,
    )
    if tuned:
        transport.lean_app(app)
    # Read by the consumer of ``pipeline.stream.transport``.
    setattr(app, transport.FETCH_WAIT_ATTRIBUTE, settings.worker_fetch_max_wait_ms)
    return app


def partition_ends(app: faust.App) -> dict[tuple[str, int], int]:
    """Each assigned partition's next offset as the consumer's last fetch saw it (no request)."""
    return {
        tp: highwater
        for tp, (highwater, _) in transport.fetch_state_of(app).items()
        if highwater is not None
    }


def raw_message(event: Any) -> RawMessage:
    """A Faust event's message: where it came from, its key and value."""
    message = event.message
    return RawMessage(
        Position(message.topic, message.partition, message.offset), message.key, message.value
    )


def message_bytes(event: Any) -> int:
    """What one Faust event's message weighs in a batch (``PIPELINE_BATCH_BYTES``)."""
    value = event.message.value
    return len(value) if value is not None else 0


def messages_waiting(
    positions: Iterable[Position], ends: Mapping[tuple[str, int], int], read_ahead: int = 0
) -> int:
    """Messages after ``positions`` (a batch's) in their partitions, by the fetched ``ends``
    (each partition's next offset); partitions without a known end count 0. The one offset
    right after a partition's last message in the batch is not counted: with transactional
    producers it is the commit marker, never delivered, and a caught-up worker would
    otherwise always seem behind. At least the ``read_ahead`` messages already read beyond
    the batch, whatever the fetches said (a batch cut by its byte bound is not full by its
    count, so only this tells a worker behind when the fetched ends are stale)."""
    last: dict[tuple[str, int], int] = {}
    for position in positions:
        tp = (position.topic, position.partition)
        last[tp] = max(last.get(tp, -1), position.offset)
    fetched = sum(max(0, ends[tp] - offset - 2) for tp, offset in last.items() if tp in ends)
    return max(fetched, read_ahead)


def create_app(settings: Settings, groups: list[str], topics: Topics | None = None) -> faust.App:
    """A Faust app running ``groups``; nothing connects until a worker starts it."""
    topics = topics or declared_topics(settings)
    app = faust_app(settings, consumer_group_id(settings, groups))
    keys = Keys(settings.key_prefix)
    dead_letter = app.topic(topics.dead_letter.name, key_serializer="raw", value_serializer="raw")
    lanes = make_lanes(settings, keys, groups, topics)
    # Before the worker consumes (and before its logging is set up: nothing to log here).
    for lane in lanes:
        lane.handler.warm()
    # Held while a batch is applied, while idle work runs and while handlers are reset at a
    # rebalance: never two at once (they share the handlers' in-memory state).
    busy = asyncio.Lock()
    if lanes:
        _register_agent(app, settings, keys, lanes, dead_letter, busy)
    # Consumer lag on the worker's metrics, from what its fetches saw.
    agents = "+".join(sorted(lane.handler.name for lane in lanes))
    LAG.watch(agents, partial(transport.fetch_state_of, app))

    async def forget_cached_state(sender: Any, revoked: Any, **_: Any) -> None:
        # Users of revoked partitions may be updated by another worker from now on: handlers
        # that cache state drop it and reload from Redis when they next need it.
        async with busy:
            for lane in lanes:
                lane.handler.reset()
        LAG.forget(agents)

    app.on_partitions_revoked.connect(forget_cached_state)  # type: ignore[arg-type]

    async def note_ownership(sender: Any, assigned: Any, **_: Any) -> None:
        # With eager rebalancing, ``assigned`` is the worker's whole new assignment.
        held = {(tp.topic, tp.partition) for tp in assigned}
        for lane in lanes:
            read = [
                spec for spec in topics.specs if lane.topics is None or spec.name in lane.topics
            ]
            exclusive = holds_every_partition(read, held, app.consumer.topic_partitions)
            lane.handler.owns_every_partition(exclusive)
            log.info(
                "agent group %s: this worker holds %s partition of its topics",
                lane.handler.name,
                "every" if exclusive else "not every",
            )

    app.on_partitions_assigned.connect(note_ownership)  # type: ignore[arg-type]
    return app


def _register_agent(
    app: faust.App,
    settings: Settings,
    keys: Keys,
    lanes: list[Lane],
    dead_letter: Any,
    busy: asyncio.Lock,
) -> None:
    """One agent reading every topic of every lane, applying each batch with all lanes."""
    topic_names = sorted(set().union(*(lane.topics or () for lane in lanes)))
    source = app.topic(*topic_names, schema=transport.RawSchema())
    name = "+".join(lane.handler.name for lane in lanes)
    lag_label = "+".join(sorted(lane.handler.name for lane in lanes))
    dedup_window_ms = settings.dedup_window_s * 1000
    phases = phases_of(lanes)

    async def send_dead_letters(records: list[tuple[bytes | None, bytes]]) -> None:
        pending = [await dead_letter.send(key=key, value=value) for key, value in records]
        await asyncio.gather(*pending)

    def waiting_after(read: list[Any]) -> int:
        # Messages of these events' partitions in the broker after the events read.
        positions = (Position(e.message.topic, e.message.partition, e.message.offset) for e in read)
        return messages_waiting(positions, partition_ends(app))

    # The events read ahead of the batch in hand (messages_waiting counts them), decoded
    # while the events' transaction runs (entries: about one batch; bounded at four).
    read_ahead: list[Any] = []
    ahead = DecodeAhead(
        lanes,
        lambda: [(event.message.topic, event.message.value) for event in read_ahead],
        4 * settings.batch_size,
        phases[-1],
    )

    async def agent(stream: Any) -> None:
        store = connect(settings)
        read_ahead.clear()
        try:
            batches = take_batches(
                stream,
                settings.batch_size,
                settings.batch_ms / 1000.0,
                waiting=waiting_after,
                max_bytes=settings.batch_bytes,
                size=message_bytes,
                buffer=read_ahead,
            )
            async with aclosing(batches):
                async for events in batches:
                    async with busy:
                        await apply_batch(store, events)
        except Exception:
            # Faust would restart the agent on the same stream, past the messages read
            # ahead and never acknowledged: their partitions' commits would stall, or skip
            # one. A restarted worker reads again from the committed offsets instead.
            stop_worker(f"agents {name}: reading the stream failed")
        finally:
            await store.close()

    async def apply_batch(store: Any, events: list[Any]) -> None:
        messages = [raw_message(event) for event in events]
        ends = partition_ends(app)
        waiting = messages_waiting((m.position for m in messages), ends, len(read_ahead))
        for lane in lanes:
            lane.handler.backlog(waiting)
        try:
            for phase in phases:
                if not any(lane.reads(m) for lane in phase for m in messages):
                    continue
                apply = partial(
                    process_lanes,
                    store,
                    keys,
                    phase,
                    messages,
                    send_dead_letters,
                    dedup_window_ms,
                    settings.dedup_max_ids,
                    settings.dead_letter_max_value_bytes,
                    ends,
                    ahead,
                )
                await retry_transient(
                    apply,
                    store.transient_errors,
                    f"agents {name}: batch",
                    permanent=store.permanent_errors,
                )
            positions = (m.position for m in messages)
            LAG.applied(lag_label, ((p.topic, p.partition, p.offset) for p in positions))
        except Exception:
            # Faust would restart the agent on the same stream, past this batch, never
            # applied; ending the process keeps it unacknowledged instead, and the offset
            # fences make its redelivery after a restart safe.
            stop_worker(f"agents {name}: batch failed")

    idle_lanes = [lane for lane in lanes if type(lane.handler).idle is not Handler.idle]
    if idle_lanes:

        async def idle_work() -> None:
            # A plain loop, not a Faust timer: timers log each late tick, and a tick is late
            # whenever a batch held the event loop.
            store = connect(settings)
            try:
                await idle_loop(store, idle_lanes, busy, partial(asyncio.sleep, IDLE_EVERY_S))
            finally:
                await store.close()

        idle_work.__name__ = idle_work.__qualname__ = f"idle_{name.replace('+', '_')}"
        app.task(idle_work)

    agent.__name__ = "agent_" + "_".join(lane.handler.name for lane in lanes)
    agent.__qualname__ = agent.__name__
    app.agent(source, name=name, concurrency=1)(agent)
