"""The recently active users a personal worker refreshes when new items join."""

from __future__ import annotations

from pipeline.features.personal.recent import RecentUsers


def test_most_recent_first_at_most_the_limit() -> None:
    recent = RecentUsers(limit=3, max_age_ms=10_000)
    recent.note([("a", 1), ("b", 2), ("c", 3)])
    recent.note([("a", 4), ("d", 5)])
    # b was the least recent: it left when d came.
    assert recent.active(5) == ["d", "a", "c"]
    assert len(recent) == 3


def test_gone_users_leave_and_expired_ones_are_not_offered() -> None:
    recent = RecentUsers(limit=10, max_age_ms=200)
    recent.note([("a", 0), ("b", 50), ("c", 150)], gone=["b"])
    assert recent.active(150) == ["c", "a"]
    # a's data expires 200 ms after its event: not offered any more.
    assert recent.active(201) == ["c"]


def test_an_earlier_event_in_a_later_batch_keeps_the_latest_time() -> None:
    recent = RecentUsers(limit=10, max_age_ms=100)
    recent.note([("a", 500)])
    recent.note([("a", 100)])
    assert recent.active(590) == ["a"]


def test_a_limit_of_zero_keeps_nobody() -> None:
    recent = RecentUsers(limit=0, max_age_ms=100)
    recent.note([("a", 1)])
    assert recent.active(1) == [] and len(recent) == 0
