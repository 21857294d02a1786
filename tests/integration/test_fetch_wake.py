"""A fetch under way returns a resumed partition's buffered records once woken
(``pipeline.stream.transport.wake_fetch_waiters``), against the real broker.

Faust takes a partition out of the set its fetch asks for while the stream buffer is under
pressure, and puts it back when the buffer drains; the fetch under way keeps waiting for
records of the partitions it holds (Faust waits up to a second), though the resumed
partition's records are already in the consumer. Every backlog ended with that second.
"""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from pipeline.core.settings import Settings
from pipeline.core.topics import TopicSpec
from pipeline.stream.kafka import apply_topics, kafka_producer
from pipeline.stream.transport import wake_fetch_waiters
from tests.integration.helpers import wait_for

pytestmark = pytest.mark.asyncio


async def test_a_woken_fetch_returns_the_records_of_a_partition_resumed_meanwhile(
    isolated: Settings,
) -> None:
    topic = f"{isolated.topic_prefix}wake"
    spec = TopicSpec(topic, partitions=2, replication=1, retention_ms=3_600_000, key="user")
    await apply_topics(isolated.kafka_bootstrap, [spec])
    first, second = TopicPartition(topic, 0), TopicPartition(topic, 1)
    async with kafka_producer(isolated) as producer:
        for partition in (0, 1):
            await producer.send_and_wait(topic, b"x", partition=partition)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=isolated.kafka_bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=50,
    )
    await consumer.start()
    try:
        consumer.assign([first, second])
        fetcher = consumer._fetcher
        # The second partition's records reach the consumer while the fetch asks for the
        # first one only (Faust's active set, the second paused).
        active = {first}

        async def held() -> set[TopicPartition]:
            return set(fetcher._records)

        await wait_for(
            held,
            lambda partitions: second in partitions,
            30,
            "the second partition's records in the consumer",
        )
        while await fetcher.fetched_records(active, timeout=0):
            pass
        waiting = asyncio.ensure_future(fetcher.fetched_records(active, timeout=60))
        done, _ = await asyncio.wait({waiting}, timeout=0.3)
        assert not done  # nothing new for the first partition: it waits
        active.add(second)  # resumed, as Faust's on_buffer_drop does
        done, _ = await asyncio.wait({waiting}, timeout=0.3)
        assert not done  # the defect: it would wait out its 60 s
        wake_fetch_waiters(consumer)
        records = await asyncio.wait_for(waiting, timeout=10)
        assert second in records and records[second]
    finally:
        await consumer.stop()
