"""Offset fences: what makes every batch's effects exactly-once on at-least-once delivery.

An agent group applies each batch as one transaction that also records, per (topic,
partition), the last Kafka offset it covers (``{p}:fence:{group}:{topic}:{partition}``).
Messages at or below that fence are skipped on replay, so a crash at any moment neither
loses nor doubles an update. The transaction watches only the fences of the batch's own
partitions, so workers of one group never abort each other.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from pipeline.core.keys import Keys
from pipeline.store.base import Store, Writes

log = logging.getLogger(__name__)


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


# Called with the fresh message indexes of every group that has any (indexes into that
# group's positions); reads, sends dead letters, and returns all the groups' writes.
PrepareGroups = Callable[[dict[str, list[int]]], Awaitable[Writes]]


@dataclass(frozen=True, slots=True)
class GroupsApplied:
    """Outcome of :func:`apply_fenced_groups`: ``fresh`` messages applied per group,
    groups ``planned`` in any attempt, and groups whose writes were ``committed``.

    ``fences``: what :func:`apply_guarded` checks for the writes that follow a batch.
    ``ahead``: (group, topic, partition) -> (fence, partition end) where the fence is at or
    past the partition's end as the consumer's fetches report it: a partition that restarted
    its offsets (a re-created topic, a broker that lost its data). Its messages at or below
    the fence are skipped as replays; the operator must reset the fence (docs/operations.md).
    """

    fresh: dict[str, int]
    planned: frozenset[str]
    committed: frozenset[str]
    ahead: dict[tuple[str, str, int], tuple[int, int]] = field(default_factory=dict)
    # Per committed group, each of its fences of the batch -> the offset it holds after it.
    fences: dict[str, dict[str, int]] = field(default_factory=dict)

    def of(self, group: str) -> Applied:
        return Applied(self.fresh.get(group, 0), group in self.planned, group in self.committed)


async def apply_fenced_groups(
    store: Store,
    keys: Keys,
    batches: Mapping[str, Sequence[Position]],
    prepare: PrepareGroups,
    attempts: int = 5,
    ends: Mapping[tuple[str, int], int] | None = None,
    meanwhile: Callable[[], None] | None = None,
) -> GroupsApplied:
    """Apply one batch for several agent groups in one transaction, each group once.

    ``batches`` gives each group the positions of the messages it reads. Every group's
    messages at or below its fences are skipped; ``prepare`` gets the fresh ones of each
    group and returns the writes of all of them, and every group's fence updates join those
    writes in the same transaction, guarded by WATCH on the fence keys of every group's
    partitions in the batch. A moved fence re-reads and prepares again. ``meanwhile`` runs
    while the store applies each attempt's writes (:meth:`Store.transact`).
    """
    marks = {group: batch_high_marks(positions) for group, positions in batches.items()}
    fence_keys = {
        (group, tp): keys.fence(group, tp[0], tp[1])
        for group, group_marks in marks.items()
        for tp in sorted(group_marks)
    }
    watched = list(fence_keys)
    # Planned in any attempt (a handler may hold their effects in memory), and in the last.
    planned: set[str] = set()
    last: dict[str, int] = {}
    ahead: dict[tuple[str, str, int], tuple[int, int]] = {}
    # The fences as the last attempt leaves them, per group.
    after: dict[str, dict[str, int]] = {}

    async def build(values: list[bytes | None]) -> Writes | None:
        fences = {
            slot: int(value) if value is not None else -1
            for slot, value in zip(watched, values, strict=True)
        }
        if ends:
            ahead.clear()
            for (group, tp), fence in fences.items():
                end = ends.get(tp)
                if end is not None and fence >= end:
                    ahead[(group, tp[0], tp[1])] = (fence, end)
        fresh: dict[str, list[int]] = {}
        for group, positions in batches.items():
            group_fences = {tp: fences[(g, tp)] for (g, tp) in watched if g == group}
            found = fresh_indexes(positions, group_fences)
            if found:
                fresh[group] = found
        last.clear()
        if not fresh:
            return None
        writes = await prepare(fresh)
        planned.update(fresh)
        last.update({group: len(found) for group, found in fresh.items()})
        after.clear()
        for (group, tp), key in fence_keys.items():
            value = fences[(group, tp)]
            if group in fresh and marks[group][tp] > value:
                writes.set(key, marks[group][tp])
                value = marks[group][tp]
            after.setdefault(group, {})[key] = value
        return writes

    executed = await store.transact(list(fence_keys.values()), build, attempts, meanwhile)
    committed = dict(last) if executed else {}
    return GroupsApplied(
        committed,
        frozenset(planned),
        frozenset(committed),
        dict(ahead),
        {group: after[group] for group in committed},
    )


async def apply_guarded(store: Store, guard: Mapping[str, int], writes: Writes) -> bool:
    """Apply ``writes`` in one transaction if every fence of ``guard`` still holds its
    offset (watched while they are checked); returns whether they were applied. What a
    batch's handler computed from it, written after the batch's transaction, goes in only
    while no other writer has moved past the batch."""
    keys = list(guard)

    async def build(values: list[bytes | None]) -> Writes | None:
        held = [int(value) if value is not None else -1 for value in values]
        return writes if held == [guard[key] for key in keys] else None

    return await store.transact(keys, build)


async def apply_fenced(
    store: Store,
    keys: Keys,
    group: str,
    positions: Sequence[Position],
    prepare: Prepare,
    attempts: int = 5,
) -> Applied:
    """Apply a batch once for one group: skip messages at or below their fence, write the
    rest atomically (:func:`apply_fenced_groups` with one group).

    ``prepare`` receives the indexes of fresh messages, may do reads and side effects that
    tolerate repetition (dead letters), and returns the batch's writes; the fence updates
    join them in the same transaction.
    """
    if not positions:
        return Applied(0, False, False)

    async def prepare_one(fresh: dict[str, list[int]]) -> Writes:
        return await prepare(fresh[group])

    outcome = await apply_fenced_groups(store, keys, {group: positions}, prepare_one, attempts)
    return outcome.of(group)


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


# Seconds between two warnings about the same fence ahead of its partition.
FENCE_AHEAD_WARN_EVERY_S = 60.0
_fence_warned: dict[tuple[str, str, int], float] = {}


def warn_fences_ahead(ahead: Mapping[tuple[str, str, int], tuple[int, int]]) -> None:
    """Log each fence found at or past its partition's end (at most once a minute each).

    Offsets of a partition only grow, so such a fence was written for an earlier life of
    the partition (a topic deleted and re-created, a broker that lost its data): its
    messages up to the fence would be skipped as replays. Nothing is reset automatically:
    a consumer that still owns the partition after a rebalance could be the cause for a
    moment, and resetting then would apply messages twice. docs/operations.md says how
    to reset fences.
    """
    now = time.monotonic()
    for (group, topic, partition), (fence, end) in ahead.items():
        slot = (group, topic, partition)
        if now - _fence_warned.get(slot, -FENCE_AHEAD_WARN_EVERY_S) < FENCE_AHEAD_WARN_EVERY_S:
            continue
        _fence_warned[slot] = now
        log.error(
            "agent group %s: the fence of %s[%d] is at offset %d but the partition ends at %d: "
            "its messages up to offset %d are skipped as already applied. If the topic was "
            "re-created or the broker lost its data, reset the fences: "
            "pipeline fences reset --agents %s --topic %s",
            group,
            topic,
            partition,
            fence,
            end,
            fence,
            group,
            topic,
        )
