"""Offset fences (pipeline.stream.fence): which messages of a batch are fresh."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.stream.fence import Position, batch_high_marks, fresh_indexes

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
