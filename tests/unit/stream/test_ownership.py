"""Whether a worker holds every partition of its group's topics (what lets handlers skip the
guards that keep several workers exact): as many partitions as the broker has, or as
topics.yaml declares, whichever is more."""

from __future__ import annotations

from pipeline.core.topics import TopicSpec
from pipeline.stream.app import holds_every_partition

SPECS = [
    TopicSpec("clicks", 2, 1, 1000, "user_id"),
    TopicSpec("buys", 1, 1, 1000, "user_id"),
]
EVERY_DECLARED = {("clicks", 0), ("clicks", 1), ("buys", 0)}


def unknown(_: str) -> int | None:
    return None


def test_every_declared_partition_held_is_every_partition_when_the_broker_agrees() -> None:
    assert holds_every_partition(SPECS, EVERY_DECLARED, unknown)
    assert holds_every_partition(SPECS, EVERY_DECLARED, {"clicks": 2, "buys": 1}.get)
    assert not holds_every_partition(SPECS, EVERY_DECLARED - {("buys", 0)}, unknown)
    assert not holds_every_partition([], set(), unknown)


def test_partitions_added_on_the_broker_alone_keep_the_guards_on() -> None:
    """Three partitions of clicks on the broker, two declared: another worker may hold the
    third, so holding the declared ones is not holding every one."""
    broker = {"clicks": 3, "buys": 1}.get
    assert not holds_every_partition(SPECS, EVERY_DECLARED, broker)
    assert holds_every_partition(SPECS, EVERY_DECLARED | {("clicks", 2)}, broker)


def test_a_broker_with_fewer_partitions_than_declared_keeps_the_guards_on() -> None:
    assert not holds_every_partition(SPECS, {("clicks", 0), ("buys", 0)}, {"clicks": 1}.get)
