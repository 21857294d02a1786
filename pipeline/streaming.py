"""The agent loop shared by every agent group: decode, call the domain, write, acknowledge.

A handler (one per agent group) says how to decode one message and which writes a batch
of decoded records needs. This module does the rest: micro-batching, the offset fence,
dead letters, retries while Redis is unreachable, and metrics.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
import redis.asyncio as aioredis
from prometheus_client import Counter, Histogram
from redis.exceptions import BusyLoadingError, OutOfMemoryError, ReadOnlyError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from pipeline.events import Event, Rejection, parse_message
from pipeline.keys import Keys
from pipeline.settings import Settings
from pipeline.store import FenceConflict, Position, QueueWrites, apply_fenced

log = logging.getLogger(__name__)

# Redis errors that waiting cures: outages, failovers (READONLY), loading, memory pressure.
TRANSIENT_ERRORS = (
    RedisConnectionError,
    RedisTimeoutError,
    BusyLoadingError,
    ReadOnlyError,
    OutOfMemoryError,
    TryAgainError,
    FenceConflict,
    OSError,
)

MESSAGES = Counter("pipeline_messages_total", "Kafka messages taken by agents", ["agent"])
APPLIED = Counter("pipeline_records_applied_total", "Records applied to Redis", ["agent"])
REJECTED = Counter(
    "pipeline_records_rejected_total", "Records sent to the dead-letter topic", ["agent"]
)
REPLAYED = Counter(
    "pipeline_messages_replayed_total", "Messages skipped by the offset fence", ["agent"]
)
BATCH_SECONDS = Histogram("pipeline_batch_seconds", "Time to apply one batch", ["agent"])


@dataclass(frozen=True, slots=True)
class RawMessage:
    position: Position
    key: bytes | None
    value: bytes | None


class Handler(Protocol):
    """The part of an agent group that knows its domain."""

    name: str

    def decode(self, value: bytes | None) -> tuple[list[Any], list[Rejection]]:
        """One message to its valid records and its rejections. Must not raise."""

    async def plan(self, redis: aioredis.Redis, records: list[Any]) -> Callable[[Any], None]:
        """Do the reads a batch needs and return a function that queues its writes.

        May be called again for the same records when the transaction has to retry; a
        handler that keeps state in memory implements ``committed()`` / ``aborted()`` too.
        """


class EventTopicHandler:
    """Base of the handlers that read event topics: one ``decode`` for all of them.

    Subclasses set ``name`` and implement ``plan``; ``__init__`` takes the settings.
    """

    name: str

    def __init__(self, settings: Settings) -> None:
        self.max_future_ms = int(settings.max_future_skew_s * 1000)

    def decode(self, value: bytes | None) -> tuple[list[Event], list[Rejection]]:
        return parse_message(value, int(time.time() * 1000), self.max_future_ms)


async def drop_seen_events(redis: aioredis.Redis, seen_key: str, records: list[Any]) -> list[Any]:
    """Records whose ``event_id`` was not applied within the window (nor earlier in the batch)."""
    ids = [getattr(record, "event_id", None) for record in records]
    known = [i for i in ids if i is not None]
    if not known:
        return records
    scores = await redis.zmscore(seen_key, known)
    seen = {event_id for event_id, score in zip(known, scores, strict=True) if score is not None}
    kept = []
    for record, event_id in zip(records, ids, strict=True):
        if event_id is None:
            kept.append(record)
        elif event_id not in seen:
            seen.add(event_id)
            kept.append(record)
    return kept


def dead_letter_record(message: RawMessage, rejection: Rejection, agent: str) -> bytes:
    """The dead-letter payload: the original bytes, where they came from, and why."""
    record: dict[str, Any] = {
        "reason": rejection.reason,
        "index": rejection.index,
        "agent": agent,
        "topic": message.position.topic,
        "partition": message.position.partition,
        "offset": message.position.offset,
        "rejected_at": int(time.time() * 1000),
    }
    if message.value is None:
        record["value"] = None
    else:
        try:
            record["value"] = message.value.decode("utf-8")
        except UnicodeDecodeError:
            record["value_base64"] = base64.b64encode(message.value).decode("ascii")
    return orjson.dumps(record)


SendDeadLetters = Callable[[list[tuple[bytes | None, bytes]]], Awaitable[None]]


async def process_batch(
    redis: aioredis.Redis,
    keys: Keys,
    handler: Handler,
    messages: Sequence[RawMessage],
    send_dead_letters: SendDeadLetters,
    dedup_window_ms: int = 0,
) -> int:
    """Apply one batch exactly once; returns how many records were applied.

    Replayed Kafka messages are skipped by the offset fence; with ``dedup_window_ms``, events
    whose ``event_id`` was applied within that window are skipped too (a client that sent
    the same event twice), as DESIGN.md asks of event ids.
    """
    applied = 0
    seen_key = keys.seen(handler.name)

    async def prepare(fresh: list[int]) -> QueueWrites:
        nonlocal applied
        records: list[Any] = []
        dead: list[tuple[bytes | None, bytes]] = []
        for index in fresh:
            message = messages[index]
            decoded, rejections = handler.decode(message.value)
            records.extend(decoded)
            dead.extend(
                (message.key, dead_letter_record(message, r, handler.name)) for r in rejections
            )
        if dead:
            # Delivered before the fence moves: a crash in between re-sends, never loses.
            await send_dead_letters(dead)
            REJECTED.labels(handler.name).inc(len(dead))
        if dedup_window_ms and records:
            records = await drop_seen_events(redis, seen_key, records)
        queue = await handler.plan(redis, records) if records else None
        applied = len(records)
        now_ms = int(time.time() * 1000)
        event_ids = (
            {r.event_id: now_ms for r in records if getattr(r, "event_id", None)}
            if dedup_window_ms
            else {}
        )

        def queue_writes(pipe: Any) -> None:
            if queue is not None:
                queue(pipe)
            if event_ids:
                pipe.zadd(seen_key, event_ids)
                pipe.zremrangebyscore(seen_key, "-inf", now_ms - dedup_window_ms)

        return queue_writes

    positions = [message.position for message in messages]
    aborted = getattr(handler, "aborted", None)
    try:
        outcome = await apply_fenced(redis, keys, handler.name, positions, prepare)
    except BaseException:
        if aborted is not None:
            aborted()
        raise
    if outcome.planned and not outcome.executed:
        # Planned, then another writer applied the batch first: our in-memory effects are
        # not in Redis, so the handler must forget them.
        if aborted is not None:
            aborted()
        applied = 0
    elif outcome.executed:
        committed = getattr(handler, "committed", None)
        if committed is not None:
            committed()
    MESSAGES.labels(handler.name).inc(len(messages))
    REPLAYED.labels(handler.name).inc(len(messages) - outcome.fresh)
    APPLIED.labels(handler.name).inc(applied)
    return applied


async def process_with_retry(
    redis: aioredis.Redis,
    keys: Keys,
    handler: Handler,
    messages: Sequence[RawMessage],
    send_dead_letters: SendDeadLetters,
    dedup_window_ms: int = 0,
    max_backoff_s: float = 5.0,
) -> int:
    """Like :func:`process_batch`, but waits out Redis outages instead of dropping the batch.

    The batch is not acknowledged until it is applied, so nothing is lost meanwhile. Errors
    that waiting cannot cure propagate: the agent then stops the worker process (app.py),
    so that the unacknowledged batch is delivered again after a restart.
    """
    backoff = 0.1
    while True:
        try:
            with BATCH_SECONDS.labels(handler.name).time():
                return await process_batch(
                    redis, keys, handler, messages, send_dead_letters, dedup_window_ms
                )
        except TRANSIENT_ERRORS as exc:
            log.warning(
                "agent %s: batch not applied (%s); retrying in %.1f s", handler.name, exc, backoff
            )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, max_backoff_s)
