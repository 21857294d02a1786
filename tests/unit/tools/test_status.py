"""Key families of ``pipeline status`` (pipeline.tools.status), by the key schema."""

from __future__ import annotations

from pipeline.tools.status import PartitionStatus, key_family


def test_key_families_follow_the_schema() -> None:
    assert key_family("rec:user:a:b:history", "rec") == "user:*:history"
    assert key_family("rec:user:a:segments:12", "rec") == "user:*:segments"
    assert key_family("rec:foryou:pending", "rec") == "foryou:pending"
    assert key_family("rec:foryou:bob", "rec") == "foryou:*"
    assert key_family("rec:related:also_bought:tent", "rec") == "related:also_bought"
    assert key_family("rec:trending:clicks:1h:3:all", "rec") == "trending"
    assert key_family("rec:fence:trending:t.clicks:0", "rec") == "fence"
    assert key_family("rec:items:unavailable", "rec") == "items:unavailable"
    assert key_family("rec:items", "rec") == "items"


def test_lag_counts_from_the_next_offset_to_apply() -> None:
    assert PartitionStatus("g", "t", 0, applied=None, end=5).lag == 5
    assert PartitionStatus("g", "t", 0, applied=4, end=5).lag == 0
    assert PartitionStatus("g", "t", 0, applied=1, end=5).lag == 3
    assert PartitionStatus("g", "t", 0, applied=1, end=None).lag is None


def test_a_fence_at_or_past_the_partition_end_is_flagged() -> None:
    assert PartitionStatus("g", "t", 0, applied=7, end=3).fence_ahead
    assert PartitionStatus("g", "t", 0, applied=3, end=3).fence_ahead
    assert not PartitionStatus("g", "t", 0, applied=2, end=3).fence_ahead
    assert not PartitionStatus("g", "t", 0, applied=None, end=3).fence_ahead
    assert not PartitionStatus("g", "t", 0, applied=7, end=None).fence_ahead
