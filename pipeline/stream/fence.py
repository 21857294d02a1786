"""Offset fences: what makes every batch's effects exactly-once on at-least-once delivery.

An agent group applies each batch as one transaction that also records, per (topic,
partition), the last Kafka offset it covers (``{p}:fence:{group}:{topic}:{partition}``).
Messages at or below that fence are skipped on replay, so a crash at any moment neither
loses nor doubles an update. The transaction watches only the fences of the batch's own
partitions, so workers of one group never abort each other.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from pipeline.core.keys import Keys
from pipeline.store.base import Store, Writes


@dataclass(frozen=True, slots=True)
class Position:
    """Where a message came from."""

    topic: str
    partition: int
    offset: int


# Called with the indexes of fresh messages; reads, sends dead letters, returns the writes.
Prepare = Callable[[list[int]], Awaitable[Writes]]


@dataclass(frozen=True, slots=True)
class Applied:
    """Outcome of :func:`apply_fenced`.

    ``fresh``: messages past their fence that were applied. ``planned``: ``prepare`` ran at
    least once. ``executed``: the last plan's writes were committed. ``planned and not
    executed`` means a handler may hold in-memory effects that the store does not have.
    """

    fresh: int
    planned: bool
    executed: bool


def batch_high_marks(positions: Sequence[Position]) -> dict[tuple[str, int], int]:
    """The highest offset of each (topic, partition) in a batch."""
    marks: dict[tuple[str, int], int] = {}
    for pos in positions:
        key = (pos.topic, pos.partition)
        if pos.offset > marks.get(key, -1):
            marks[key] = pos.offset
    return marks


def fresh_indexes(
    positions: Sequence[Position], fences: Mapping[tuple[str, int], int]
) -> list[int]:
    """Indexes of messages past their partition's fence (not yet applied)."""
    return [
        i
        for i, pos in enumerate(positions)
        if pos.offset > fences.get((pos.topic, pos.partition), -1)
    ]


async def apply_fenced(
    store: Store,
    keys: Keys,
    group: str,
    positions: Sequence[Position],
    prepare: Prepare,
    attempts: int = 5,
) -> Applied:
    """Apply a batch once: skip messages at or below their fence, write the rest atomically.

    ``prepare`` receives the indexes of fresh messages, may do reads and side effects that
    tolerate repetition (dead letters), and returns the batch's writes; the fence updates
    join them in the same transaction. A conflict on the fences re-reads them and prepares
    again (``TransactionConflict`` after ``attempts``).
    """
    if not positions:
        return Applied(0, False, False)
    marks = batch_high_marks(positions)
    partitions = sorted(marks)
    fence_keys = [keys.fence(group, topic, partition) for topic, partition in partitions]
    planned = False
    fresh_count = 0

    async def build(values: list[bytes | None]) -> Writes | None:
        nonlocal planned, fresh_count
        fences = {
            tp: int(value) if value is not None else -1
            for tp, value in zip(partitions, values, strict=True)
        }
        fresh = fresh_indexes(positions, fences)
        fresh_count = len(fresh)
        if not fresh:
            return None
        writes = await prepare(fresh)
        planned = True
        for tp, key in zip(partitions, fence_keys, strict=True):
            if marks[tp] > fences[tp]:
                writes.set(key, marks[tp])
        return writes

    executed = await store.transact(fence_keys, build, attempts)
    return Applied(fresh_count if executed else 0, planned, executed)


async def applied_offsets(store: Store, keys: Keys, group: str) -> dict[str, int]:
    """``{topic}:{partition}`` -> last applied offset of an agent group (operations, tests)."""
    prefix = keys.fence_prefix(group)
    found = await store.scan(prefix + "*")
    values = await store.mget(found) if found else []
    return {
        key[len(prefix) :]: int(value)
        for key, value in zip(found, values, strict=True)
        if value is not None
    }
