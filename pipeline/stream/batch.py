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
from pipeline.stream.fence import Position, apply_fenced_groups
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


@dataclass(frozen=True, slots=True)
class Lane:
    """One agent group's part of a batch: its handler and the topics it reads (None: all)."""

    handler: Handler[Any]
    topics: frozenset[str] | None = None

    def reads(self, message: RawMessage) -> bool:
        return self.topics is None or message.position.topic in self.topics


async def process_lanes(
    store: Store,
    keys: Keys,
    lanes: Sequence[Lane],
    messages: Sequence[RawMessage],
    send_dead_letters: SendDeadLetters,
    dedup_window_ms: int = 0,
    dedup_max_ids: int = 0,
) -> dict[str, int]:
    """Apply one batch exactly once for every lane; returns records applied per group.

    Each message is decoded once per decoder (the event groups share one), every lane plans
    its records, and all writes and every lane's fences go in one transaction. Replayed
    messages are skipped per group by its fences; with ``dedup_window_ms``, events whose
    ``event_id`` the group applied within that window are skipped too (client retries),
    remembering at most ``dedup_max_ids`` ids per group (0: no limit). A
    rejected message becomes one dead letter (per rejection), sent before the fences move.
    """
    members = {
        lane.handler.name: [i for i, message in enumerate(messages) if lane.reads(message)]
        for lane in lanes
    }
    by_name = {lane.handler.name: lane for lane in lanes}
    positions = {
        name: [messages[i].position for i in indexes]
        for name, indexes in members.items()
        if indexes
    }
    decoded: dict[tuple[Any, int], tuple[list[Any], list[Rejection]]] = {}
    applied: dict[str, int] = {}

    def decode(handler: Handler[Any], index: int) -> tuple[list[Any], list[Rejection]]:
        key = (type(handler).decode, index)
        found = decoded.get(key)
        if found is None:
            found = decoded[key] = handler.decode(messages[index].value)
        return found

    async def prepare(fresh: dict[str, list[int]]) -> Writes:
        applied.clear()
        records: dict[str, list[Any]] = {}
        # (message index, rejection) -> the groups that rejected it: one dead letter each.
        dead: dict[tuple[int, Rejection], list[str]] = {}
        for name, local in fresh.items():
            handler = by_name[name].handler
            found: list[Any] = []
            records[name] = found
            for index in (members[name][position] for position in local):
                decoded_records, rejections = decode(handler, index)
                found.extend(decoded_records)
                for rejection in rejections:
                    dead.setdefault((index, rejection), []).append(name)
        if dead:
            letters = [
                (
                    messages[index].key,
                    dead_letter_record(messages[index], rejection, "+".join(sorted(groups))),
                )
                for (index, rejection), groups in dead.items()
            ]
            # Delivered before the fences move: a crash in between re-sends, never loses.
            await send_dead_letters(letters)
            for groups in dead.values():
                for name in groups:
                    REJECTED.labels(name).inc()
        writes = Writes()
        now_ms = int(time.time() * 1000)
        for name, found in records.items():
            handler = by_name[name].handler
            deduplicate = bool(dedup_window_ms) and handler.deduplicate
            seen_key = keys.seen(name)
            if deduplicate and found:
                found = await drop_seen_events(store, seen_key, found)
            if found:
                writes.extend(await handler.plan(store, found))
            applied[name] = len(found)
            if deduplicate and found:
                writes.zadd(seen_key, {record.event_id: now_ms for record in found})
                writes.zrem_by_score(seen_key, "-inf", now_ms - dedup_window_ms)
                if dedup_max_ids:
                    writes.ztrim(seen_key, dedup_max_ids)
        return writes

    label = "+".join(sorted(by_name))
    try:
        with BATCH_SECONDS.labels(label).time():
            outcome = await apply_fenced_groups(store, keys, positions, prepare)
    except BaseException:
        for lane in lanes:
            lane.handler.aborted()
        raise
    result = {}
    for name, lane in by_name.items():
        step = outcome.of(name)
        if step.planned and not step.executed:
            # Planned, then another writer applied the batch first: in-memory effects are not
            # in the store, so the handler must forget them.
            lane.handler.aborted()
        elif step.executed:
            lane.handler.committed()
        result[name] = applied.get(name, 0) if step.executed else 0
        MESSAGES.labels(name).inc(len(members[name]))
        REPLAYED.labels(name).inc(len(members[name]) - step.fresh)
        APPLIED.labels(name).inc(result[name])
    return result


async def process_batch(
    store: Store,
    keys: Keys,
    handler: Handler[Any],
    messages: Sequence[RawMessage],
    send_dead_letters: SendDeadLetters,
    dedup_window_ms: int = 0,
) -> int:
    """:func:`process_lanes` for one handler reading every message; returns how many
    records it applied."""
    applied = await process_lanes(
        store, keys, [Lane(handler)], messages, send_dead_letters, dedup_window_ms
    )
    return applied[handler.name]


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
