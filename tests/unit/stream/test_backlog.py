"""How many messages wait behind a batch: what the worker tells handlers before each batch."""

from __future__ import annotations

from pipeline.stream.app import messages_waiting
from pipeline.stream.fence import Position


def test_messages_waiting_counts_what_the_fetches_saw_after_the_batch() -> None:
    """Per partition of the batch: its fetched end minus the batch's last offset there, less
    the offset right after it (a transaction's commit marker when producers use them);
    partitions with no known end, or the batch's end reached, count nothing."""
    batch = [Position("clicks", 0, 7), Position("clicks", 0, 9), Position("buys", 1, 3)]
    assert messages_waiting(batch, {("clicks", 0): 10, ("buys", 1): 4}) == 0
    # A marker after each partition's last message: still caught up.
    assert messages_waiting(batch, {("clicks", 0): 11, ("buys", 1): 5}) == 0
    assert messages_waiting(batch, {("clicks", 0): 15, ("buys", 1): 4}) == 4
    assert messages_waiting(batch, {("clicks", 0): 15, ("buys", 1): 10, ("other", 0): 99}) == 9
    assert messages_waiting(batch, {}) == 0
    # Messages already read beyond the batch wait too, whatever the fetches said (stale or
    # unknown ends); known ends that say more win.
    assert messages_waiting(batch, {}, read_ahead=3) == 3
    assert messages_waiting(batch, {("clicks", 0): 15, ("buys", 1): 10}, read_ahead=3) == 9
