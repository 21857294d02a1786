"""Offset fences (pipeline.stream.fence): which messages of a batch are fresh, and the
writes guarded by a batch's fences."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.store.base import Writes
from pipeline.store.memory import MemoryStore
from pipeline.stream.fence import (
    Position,
    apply_fenced_groups,
    apply_guarded,
    batch_high_marks,
    fresh_indexes,
)
from tests.unit.features.helpers import KEYS

FAST = settings(max_examples=150, deadline=None, database=None)

partitions = st.tuples(st.sampled_from(["events.clicks", "events.conversions"]), st.integers(0, 3))


@st.composite
def batches(draw: st.DrawFn) -> list[Position]:
    """Messages as one consumer sees them: offsets increase within each partition."""
    order = draw(st.lists(partitions, max_size=30))
    next_offset = {part: draw(st.integers(0, 10**9)) for part in set(order)}
    positions = []
    for part in order:
        offset = next_offset[part]
        positions.append(Position(part[0], part[1], offset))
        next_offset[part] = offset + draw(st.integers(1, 5))
    return positions


@FAST
@given(batches(), st.data())
def test_fences_of_a_prefix_leave_exactly_the_suffix(
    positions: list[Position], data: st.DataObject
) -> None:
    """A crash after applying the first k messages: the replay applies the rest, once."""
    applied = data.draw(st.integers(0, len(positions)))
    fences = batch_high_marks(positions[:applied])
    assert fresh_indexes(positions, fences) == list(range(applied, len(positions)))


@FAST
@given(batches())
def test_high_marks_are_the_last_offset_per_partition(positions: list[Position]) -> None:
    marks = batch_high_marks(positions)
    assert set(marks) == {(pos.topic, pos.partition) for pos in positions}
    for pos in positions:
        assert marks[(pos.topic, pos.partition)] >= pos.offset
    for (topic, partition), mark in marks.items():
        assert mark == max(
            pos.offset for pos in positions if (pos.topic, pos.partition) == (topic, partition)
        )
    # A full replay is all fenced off; no fences at all leaves everything fresh.
    assert fresh_indexes(positions, marks) == []
    assert fresh_indexes(positions, {}) == list(range(len(positions)))


@FAST
@given(batches(), batches())
def test_fences_only_move_forward_across_batches(
    first: list[Position], second: list[Position]
) -> None:
    """Fences of an earlier batch never hide messages past them in a later one."""
    fences = batch_high_marks(first)
    fresh = fresh_indexes(second, fences)
    for index, pos in enumerate(second):
        assert (index in fresh) == (pos.offset > fences.get((pos.topic, pos.partition), -1))


def test_fence_examples() -> None:
    batch = [
        Position("t", 0, 10),
        Position("t", 1, 5),
        Position("t", 0, 11),
        Position("u", 0, 3),
        Position("t", 1, 6),
    ]
    assert batch_high_marks(batch) == {("t", 0): 11, ("t", 1): 6, ("u", 0): 3}
    assert fresh_indexes(batch, {("t", 0): 10, ("t", 1): 6}) == [2, 3]
    assert fresh_indexes(batch, {("t", 0): 9}) == [0, 1, 2, 3, 4]
    # Offset 0 is a real offset: a missing fence reads as -1.
    assert fresh_indexes([Position("t", 0, 0)], {}) == [0]
    assert fresh_indexes([Position("t", 0, 0)], {("t", 0): 0}) == []
    assert batch_high_marks([]) == {}


def test_a_batch_reports_its_fences_and_what_follows_it_is_guarded_by_them() -> None:
    """The outcome gives each committed group's fences as the batch left them (moved or
    not); writes guarded by them apply while they hold, and not once another writer moved
    one."""
    store = MemoryStore()

    async def body() -> None:
        await store.apply(Writes().set(KEYS.fence("g", "t", 1), 50))
        batch = [Position("t", 0, 7), Position("t", 0, 9), Position("t", 1, 40)]

        async def prepare(fresh: dict[str, list[int]]) -> Writes:
            return Writes().set("t:data", len(fresh["g"]))

        outcome = await apply_fenced_groups(store, KEYS, {"g": batch}, prepare)
        guard = outcome.fences["g"]
        assert guard == {KEYS.fence("g", "t", 0): 9, KEYS.fence("g", "t", 1): 50}
        assert await apply_guarded(store, guard, Writes().set("t:after", 1))
        await store.apply(Writes().set(KEYS.fence("g", "t", 1), 60))
        assert not await apply_guarded(store, guard, Writes().set("t:after", 2))
        assert await store.get("t:after") == b"1"

    asyncio.run(body())
