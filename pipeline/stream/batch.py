"""The batch loop shared by every agent group: decode, plan, write with the fences, acknowledge.

:func:`process_batch` applies one micro-batch exactly once; :func:`retry_transient` waits out
store outages instead of dropping it. Rejected messages go to the dead-letter topic
before the fence moves, so a crash in between re-sends them and never loses one.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

from pipeline.core.events import Rejection
from pipeline.core.keys import Keys
from pipeline.store.base import Store, Writes
from pipeline.stream.fence import Position, apply_fenced
from pipeline.stream.handler import Handler
from pipeline.stream.metrics import APPLIED, BATCH_SECONDS, MESSAGES, REJECTED, REPLAYED

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RawMessage:
    position: Position
    key: bytes | None
    value: bytes | None


# Sends (key, value) dead letters and returns once the broker acknowledged them all.
SendDeadLetters = Callable[[list[tuple[bytes | None, bytes]]], Awaitable[None]]


async def drop_seen_events(store: Store, seen_key: str, records: list[Any]) -> list[Any]:
    """Records whose ``event_id`` was not applied within the window (nor earlier in the batch)."""
    ids = [record.event_id for record in records]
    scores = await store.zmscore(seen_key, ids)
    seen = {event_id for event_id, score in zip(ids, scores, strict=True) if score is not None}
    kept = []
    for record, event_id in zip(records, ids, strict=True):
        if event_id not in seen:
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


async def process_batch(
    store: Store,
    keys: Keys,
    handler: Handler[Any],
    messages: Sequence[RawMessage],
    send_dead_letters: SendDeadLetters,
    dedup_window_ms: int = 0,
) -> int:
    """Apply one batch exactly once; returns how many records were applied.

    Replayed Kafka messages are skipped by the offset fence; with ``dedup_window_ms``, events
    whose ``event_id`` was applied within that window are skipped too (a client that sent
    the same event twice).
    """
    applied = 0
    seen_key = keys.seen(handler.name)
    deduplicate = bool(dedup_window_ms) and handler.deduplicate

    async def prepare(fresh: list[int]) -> Writes:
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
        if deduplicate and records:
            records = await drop_seen_events(store, seen_key, records)
        writes = await handler.plan(store, records) if records else Writes()
        applied = len(records)
        if deduplicate and records:
            now_ms = int(time.time() * 1000)
            writes.zadd(seen_key, {record.event_id: now_ms for record in records})
            writes.zrem_by_score(seen_key, "-inf", now_ms - dedup_window_ms)
        return writes

    positions = [message.position for message in messages]
    try:
        with BATCH_SECONDS.labels(handler.name).time():
            outcome = await apply_fenced(store, keys, handler.name, positions, prepare)
    except BaseException:
        handler.aborted()
        raise
    if outcome.planned and not outcome.executed:
        # Planned, then another writer applied the batch first: our in-memory effects are
        # not in the store, so the handler must forget them.
        handler.aborted()
        applied = 0
    elif outcome.executed:
        handler.committed()
    MESSAGES.labels(handler.name).inc(len(messages))
    REPLAYED.labels(handler.name).inc(len(messages) - outcome.fresh)
    APPLIED.labels(handler.name).inc(applied)
    return applied


async def retry_transient(
    attempt: Callable[[], Awaitable[T]],
    transient: tuple[type[BaseException], ...],
    what: str,
    max_backoff_s: float = 5.0,
) -> T:
    """Run ``attempt`` until it does not raise a ``transient`` error, with backoff.

    Used around :func:`process_batch`: the batch is not acknowledged until it is applied,
    so nothing is lost while Redis is away. Other errors propagate: the agent then stops the
    worker process (``pipeline.stream.app``), so that the unacknowledged batch is delivered
    again after a restart.
    """
    backoff = 0.1
    while True:
        try:
            return await attempt()
        except transient as exc:
            log.warning("%s: not applied (%s); retrying in %.1f s", what, exc, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, max_backoff_s)
