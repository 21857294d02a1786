"""The batch loop shared by every agent group: decode, plan, write with the fences, acknowledge.

:func:`process_batch` applies one micro-batch exactly once; :func:`retry_transient` waits out
store outages instead of dropping it. Rejected messages go to the dead-letter topic
before the fence moves, so a crash in between re-sends them and never loses one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from pipeline.core.deadletters import DEAD_LETTER_VALUE_BYTES, build_dead_letter, dead_letter_key
from pipeline.core.events import Rejection
from pipeline.core.keys import Keys
from pipeline.store.base import Reads, Store, Writes
from pipeline.stream.fence import Position, apply_fenced_groups, apply_guarded, warn_fences_ahead
from pipeline.stream.handler import Handler
from pipeline.stream.metrics import BATCH_SECONDS, REJECTED, count_lane

if TYPE_CHECKING:
    from pipeline.stream.ahead import DecodeAhead

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RawMessage:
    position: Position
    key: bytes | None
    value: bytes | None


# Sends (key, value) dead letters and returns once the broker acknowledged them all.
SendDeadLetters = Callable[[list[tuple[bytes | None, bytes]]], Awaitable[None]]


async def drop_seen_events(store: Store, records: Mapping[str, list[Any]]) -> dict[str, list[Any]]:
    """Per seen-ids key, its records whose ``event_id`` was not applied within the window
    (nor earlier in the batch): every key's ids are asked in one round trip."""
    keys = [key for key, found in records.items() if found]
    reads = Reads()
    for key in keys:
        reads.zmscore(key, [record.event_id for record in records[key]])
    kept: dict[str, list[Any]] = {key: [] for key in records}
    for key, scores in zip(keys, await store.read(reads) if keys else [], strict=True):
        found = records[key]
        seen = {
            record.event_id
            for record, score in zip(found, scores, strict=True)
            if score is not None
        }
        for record in found:
            if record.event_id not in seen:
                seen.add(record.event_id)
                kept[key].append(record)
    return kept


def dead_letter_record(
    message: RawMessage,
    rejections: Sequence[Rejection],
    agent: str,
    max_value_bytes: int = DEAD_LETTER_VALUE_BYTES,
) -> bytes:
    """The one dead letter of a message that ``agent`` (groups joined by ``+``) rejected:
    where it came from, every reason, and the original bytes (a prefix, the size and a hash
    when over ``max_value_bytes``). Never longer than
    :func:`pipeline.core.deadletters.dead_letter_bound` bytes."""
    position = message.position
    return build_dead_letter(
        message.value,
        message.key,
        rejections,
        agent,
        position.topic,
        position.partition,
        position.offset,
        int(time.time() * 1000),
        max_value_bytes,
    )


@dataclass(frozen=True, slots=True)
class Lane:
    """One agent group's part of a batch: its handler and the topics it reads (None: all)."""

    handler: Handler[Any]
    topics: frozenset[str] | None = None

    def reads(self, message: RawMessage) -> bool:
        return self.reads_topic(message.position.topic)

    def reads_topic(self, topic: str) -> bool:
        return self.topics is None or topic in self.topics


async def process_lanes(
    store: Store,
    keys: Keys,
    lanes: Sequence[Lane],
    messages: Sequence[RawMessage],
    send_dead_letters: SendDeadLetters,
    dedup_window_ms: int = 0,
    dedup_max_ids: int = 0,
    dead_letter_max_value_bytes: int = DEAD_LETTER_VALUE_BYTES,
    partition_ends: Mapping[tuple[str, int], int] | None = None,
    ahead: DecodeAhead | None = None,
) -> dict[str, int]:
    """Apply one batch exactly once for every lane; returns records applied per group.

    Each message is decoded once per decoder (the event groups share one), every lane plans
    its records, and all writes and every lane's fences go in one transaction; while the
    store applies it, each lane that planned does its :meth:`Handler.meanwhile` work, whose
    writes follow the committed batch under its fences (:func:`apply_follow_up`). Replayed
    messages are skipped per group by its fences; with ``dedup_window_ms``, events whose
    ``event_id`` the group applied within that window are skipped too (client retries),
    remembering at most ``dedup_max_ids`` ids per group (0: no limit). A
    rejected message becomes one dead letter (per set of groups that rejected it, listing
    every rejected element), sent before the fences move; it keeps the original whole up to
    ``dead_letter_max_value_bytes``, else a prefix, the size and a hash. With
    ``partition_ends`` (each partition's next offset, as the consumer's fetches saw it), a
    fence at or past its partition's end is logged (:func:`warn_fences_ahead`). With
    ``ahead``, messages it decoded are not decoded again, and it decodes the messages read
    ahead while the store applies the batch.
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
    topics = [message.position.topic for message in messages]
    # The topic of every decoded record, by id (each is decoded once, and kept in ``decoded``).
    origin: dict[int, str] = {}
    # Per group, the topic of each fresh message and of each applied record (metrics).
    fresh_topics: dict[str, list[str]] = {}
    applied: dict[str, list[str]] = {}
    # The handlers that planned in the current attempt: their ``meanwhile`` runs during it,
    # and the writes it returns follow the batch (per group).
    planning: list[Handler[Any]] = []
    follow_ups: dict[str, Writes] = {}

    def decode(handler: Handler[Any], index: int) -> tuple[list[Any], list[Rejection]]:
        key = (type(handler).decode, index)
        found = decoded.get(key)
        if found is None:
            message = messages[index]
            if ahead is not None:
                found = ahead.take(handler, message)
            if found is None:
                found = handler.decode(message.value)
            decoded[key] = found
            topic = topics[index]
            for record in found[0]:
                origin[id(record)] = topic
        return found

    async def prepare(fresh: dict[str, list[int]]) -> Writes:
        applied.clear()
        fresh_topics.clear()
        planning.clear()
        records: dict[str, list[Any]] = {}
        # (message index, its rejections) -> the groups that rejected it: one dead letter
        # each (the event groups share one decoder, hence one dead letter per message).
        dead: dict[tuple[int, tuple[Rejection, ...]], list[str]] = {}
        for name, local in fresh.items():
            handler = by_name[name].handler
            found: list[Any] = []
            records[name] = found
            group_members = members[name]
            indexes = [group_members[position] for position in local]
            if indexes:
                fresh_topics[name] = [topics[index] for index in indexes]
            for index in indexes:
                decoded_records, rejections = decode(handler, index)
                found.extend(decoded_records)
                if rejections:
                    dead.setdefault((index, tuple(rejections)), []).append(name)
        if dead:
            letters = [
                (
                    dead_letter_key(messages[index].key),
                    dead_letter_record(
                        messages[index],
                        refused,
                        "+".join(sorted(groups)),
                        dead_letter_max_value_bytes,
                    ),
                )
                for (index, refused), groups in dead.items()
            ]
            # Delivered before the fences move: a crash in between re-sends, never loses.
            # Each letter is bounded (dead_letter_bound), so none is too large to send.
            await send_dead_letters(letters)
            for (index, refused), groups in dead.items():
                for name in groups:
                    REJECTED.labels(name, messages[index].position.topic).inc(len(refused))
        writes = Writes()
        now_ms = int(time.time() * 1000)
        deduplicated = {
            name
            for name in records
            if dedup_window_ms and by_name[name].handler.deduplicate and records[name]
        }
        fresh_records = await drop_seen_events(
            store, {keys.seen(name): records[name] for name in deduplicated}
        )
        for name, found in records.items():
            handler = by_name[name].handler
            deduplicate = name in deduplicated
            seen_key = keys.seen(name)
            if deduplicate:
                found = fresh_records[seen_key]
            if found:
                writes.extend(await handler.plan(store, found))
                planning.append(handler)
            applied[name] = [origin[id(record)] for record in found]
            if deduplicate and found:
                writes.zadd(seen_key, {record.event_id: now_ms for record in found})
                writes.zrem_by_score(seen_key, "-inf", now_ms - dedup_window_ms)
                if dedup_max_ids:
                    writes.ztrim(seen_key, dedup_max_ids)
        return writes

    def meanwhile() -> None:
        follow_ups.clear()
        for handler in planning:
            writes = handler.meanwhile()
            if writes:
                follow_ups[handler.name] = writes
        if ahead is not None:
            ahead.fill(lanes)

    label = "+".join(sorted(by_name))
    try:
        with BATCH_SECONDS.labels(label).time():
            outcome = await apply_fenced_groups(
                store, keys, positions, prepare, ends=partition_ends, meanwhile=meanwhile
            )
    except BaseException:
        for lane in lanes:
            lane.handler.aborted()
        raise
    if outcome.ahead:
        warn_fences_ahead(outcome.ahead)
    result = {}
    for name, lane in by_name.items():
        step = outcome.of(name)
        if step.planned and not step.executed:
            # Planned, then another writer applied the batch first: in-memory effects are not
            # in the store, so the handler must forget them.
            lane.handler.aborted()
        elif step.executed:
            lane.handler.committed()
        done = applied.get(name, []) if step.executed else []
        result[name] = len(done)
        count_lane(
            name,
            [messages[i].position.topic for i in members[name]],
            fresh_topics.get(name, []) if step.executed else [],
            done,
        )
    for name, writes in follow_ups.items():
        if outcome.of(name).executed:
            await apply_follow_up(store, by_name[name].handler, outcome.fences[name], writes)
    return result


async def apply_follow_up(
    store: Store, handler: Handler[Any], guard: Mapping[str, int], writes: Writes
) -> None:
    """What ``handler.meanwhile`` returned for a committed batch, applied while the batch's
    fences (``guard``) hold (:func:`apply_guarded`). Not applied, or failed, the handler is
    reset: what it computed then is not in the store, and it reloads from the store."""
    try:
        applied = await apply_guarded(store, guard, writes)
    except BaseException:
        handler.reset()
        raise
    if not applied:
        log.warning(
            "agent group %s: another writer moved past the batch; its derived writes are "
            "dropped and the group's state reloads from the store",
            handler.name,
        )
        handler.reset()


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


async def run_idle(store: Store, lanes: Sequence[Lane]) -> None:
    """Each lane's :meth:`Handler.idle` work, its writes applied in one transaction per lane.

    Never raises: a failure is logged and resets that handler (its cached state reloads from
    the store with the next batch), as idle work is derived state a later batch redoes.
    """
    for lane in lanes:
        handler = lane.handler
        try:
            writes = await handler.idle(store)
            if writes:
                await store.apply(writes)
        except store.transient_errors as exc:
            # Redis away: a line without a traceback; the reset handler waits for a batch.
            log.warning("agent group %s: idle work not applied (%s)", handler.name, exc)
            handler.reset()
        except Exception:
            log.warning(
                "agent group %s: idle work failed; its state reloads from the store",
                handler.name,
                exc_info=True,
            )
            handler.reset()


async def idle_loop(
    store: Store, lanes: Sequence[Lane], busy: asyncio.Lock, tick: Callable[[], Awaitable[object]]
) -> None:
    """After each ``tick`` (the worker sleeps a second), the lanes' idle work
    (:func:`run_idle`) under ``busy``, the lock a batch and a rebalance's reset hold: a turn
    that finds it held is skipped (ingestion first), and nothing else runs on the handlers
    while their idle work does. Runs until cancelled."""
    while True:
        await tick()
        if busy.locked():
            continue
        async with busy:
            await run_idle(store, lanes)


async def retry_transient(
    attempt: Callable[[], Awaitable[T]],
    transient: tuple[type[BaseException], ...],
    what: str,
    max_backoff_s: float = 5.0,
    permanent: tuple[type[BaseException], ...] = (),
) -> T:
    """Run ``attempt`` until it does not raise a ``transient`` error, with backoff.

    Used around :func:`process_batch`: the batch is not acknowledged until it is applied,
    so nothing is lost while Redis is away. Other errors, and the ``permanent`` kinds of
    transient ones (a wrong Redis password, a refused certificate: waiting cures neither),
    propagate: the agent then stops the worker process (``pipeline.stream.app``), so that
    the unacknowledged batch is delivered again after a restart.
    """
    backoff = 0.1
    while True:
        try:
            return await attempt()
        except transient as exc:
            if permanent and isinstance(exc, permanent):
                # A kind of outage that waiting never cures (a wrong password): stop loudly.
                raise
            log.warning("%s: not applied (%s); retrying in %.1f s", what, exc, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, max_backoff_s)
