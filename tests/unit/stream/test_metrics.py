"""The worker's metrics (pipeline.stream.metrics): counters per agent group and topic from the
batch loop, and the consumer lag computed from fetch state, with no broker and no Redis."""

from __future__ import annotations

from dataclasses import replace

import orjson
import pytest
from prometheus_client import REGISTRY, generate_latest

from pipeline.store.memory import MemoryStore
from pipeline.stream.batch import Lane, RawMessage, process_lanes
from pipeline.stream.fence import Position
from pipeline.stream.metrics import ConsumerLag
from tests.unit.features.helpers import KEYS
from tests.unit.stream.test_loop import Counting, DeadLetters, message


def sample(name: str, agent: str, topic: str) -> float:
    return REGISTRY.get_sample_value(name, {"agent": agent, "topic": topic}) or 0.0


class OtherCounting(Counting):
    name = "other-counting"


def on_topic(raw: RawMessage, topic: str) -> RawMessage:
    return replace(raw, position=replace(raw.position, topic=topic))


@pytest.mark.asyncio
async def test_counters_carry_the_group_and_the_topic() -> None:
    names = ("pipeline_messages_total", "pipeline_records_applied_total")
    names += ("pipeline_records_rejected_total", "pipeline_messages_replayed_total")
    slots = [(n, a, t) for n in names for a in ("counting", "other-counting") for t in "xy"]
    before = {slot: sample(*slot) for slot in slots}
    envelope = orjson.dumps([orjson.loads(message(0, f"e{n}").value or b"") for n in range(3)])
    batch = [
        on_topic(message(0, "a0"), "x"),
        on_topic(message(1, "a1"), "x"),
        RawMessage(Position("y", 0, 0), b"u", envelope),
        RawMessage(Position("y", 0, 1), b"u", b"not json"),
    ]
    lanes = [Lane(Counting()), Lane(OtherCounting(), frozenset({"y"}))]
    store, dead = MemoryStore(), DeadLetters()
    await process_lanes(store, KEYS, lanes, batch, dead)
    # Redelivery of the first two: skipped by the fence, counted as replayed.
    await process_lanes(store, KEYS, lanes, batch[:2], dead)

    def delta(name: str, agent: str, topic: str) -> float:
        return sample(name, agent, topic) - before[(name, agent, topic)]

    assert delta("pipeline_messages_total", "counting", "x") == 4
    assert delta("pipeline_messages_total", "counting", "y") == 2
    assert delta("pipeline_messages_total", "other-counting", "y") == 2
    assert delta("pipeline_messages_total", "other-counting", "x") == 0
    # The envelope's three events are three records.
    assert delta("pipeline_records_applied_total", "counting", "x") == 2
    assert delta("pipeline_records_applied_total", "counting", "y") == 3
    assert delta("pipeline_records_applied_total", "other-counting", "y") == 3
    assert delta("pipeline_records_rejected_total", "counting", "y") == 1
    assert delta("pipeline_records_rejected_total", "other-counting", "y") == 1
    assert delta("pipeline_records_rejected_total", "counting", "x") == 0
    assert delta("pipeline_messages_replayed_total", "counting", "x") == 2
    assert delta("pipeline_messages_replayed_total", "counting", "y") == 0
    batch_count = REGISTRY.get_sample_value(
        "pipeline_batch_seconds_count", {"agent": "counting+other-counting"}
    )
    assert batch_count is not None and batch_count >= 2


def test_lag_is_the_high_water_mark_minus_the_next_offset_to_apply() -> None:
    state = {
        ("clicks", 0): (100, 100),
        ("clicks", 1): (50, 20),
        ("buys", 0): (None, 0),
        ("buys", 1): (7, None),
    }
    lag = ConsumerLag()
    lag.watch("trending", lambda: state)
    # Before anything applied: the fetch position stands in; unknown ends give no sample.
    assert lag.lags() == {("trending", "clicks", 0): 0, ("trending", "clicks", 1): 30}
    lag.applied("trending", [("clicks", 0, 59), ("clicks", 0, 40), ("clicks", 1, 49)])
    lag.applied("trending", [("buys", 1, 2)])
    assert lag.lags() == {
        ("trending", "clicks", 0): 40,
        ("trending", "clicks", 1): 0,
        ("trending", "buys", 1): 4,
    }
    # A high-water mark older than what was applied never gives a negative lag.
    state[("clicks", 1)] = (45, 45)
    assert lag.lags()[("trending", "clicks", 1)] == 0
    # Revoked partitions: the fetch position stands in again.
    lag.forget("trending")
    assert lag.lags()[("trending", "clicks", 0)] == 0
    assert ("trending", "buys", 1) not in lag.lags()


def test_lag_is_exposed_with_agent_topic_and_partition_labels() -> None:
    lag = ConsumerLag()
    lag.watch("catalog+trending", lambda: {("events.clicks", 3): (12, 5)})
    registry_text = generate_latest(_Only(lag)).decode()
    assert (
        'pipeline_consumer_lag{agent="catalog+trending",partition="3",topic="events.clicks"} 7.0'
        in registry_text
    )


class _Only:
    """A registry holding one collector (generate_latest reads ``collect``)."""

    def __init__(self, collector: ConsumerLag) -> None:
        self.collector = collector

    def collect(self):  # type: ignore[no-untyped-def]
        return self.collector.collect()
