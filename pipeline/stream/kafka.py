"""Kafka clients in one place: the producer every publisher uses, and topic administration.

No idempotence and no transactions: the embedded broker (Tansu) cannot hand out producer
ids. Replays are harmless because agents fence offsets and events carry unique ids.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer

from pipeline.core.settings import Settings
from pipeline.core.topics import TopicSpec


def new_producer(settings: Settings, linger_ms: int = 10) -> AIOKafkaProducer:
    """A producer (not started) that waits for every in-sync replica."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        linger_ms=linger_ms,
        acks="all",
        enable_idempotence=False,
    )


@asynccontextmanager
async def kafka_producer(settings: Settings) -> AsyncIterator[AIOKafkaProducer]:
    """A started producer, stopped (and flushed) on exit."""
    producer = new_producer(settings)
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


@dataclass(frozen=True, slots=True)
class TopicDifference:
    topic: str
    setting: str
    declared: str
    actual: str

    def __str__(self) -> str:
        return f"{self.topic}: {self.setting} is {self.actual} on the broker, {self.declared} in topics.yaml"


async def apply_topics(
    bootstrap: str, specs: Iterable[TopicSpec]
) -> tuple[list[str], list[TopicDifference]]:
    """Create the missing topics; return (created names, differences of existing ones).

    Idempotent: a second run creates nothing. Existing topics are never altered; their
    differences from the file are reported for the operator to act on.
    """
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    specs = list(specs)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [spec for spec in specs if spec.name not in existing]
        if missing:
            await admin.create_topics(
                [
                    NewTopic(
                        name=spec.name,
                        num_partitions=spec.partitions,
                        replication_factor=spec.replication,
                        topic_configs=spec.configs,
                    )
                    for spec in missing
                ]
            )
        differences: list[TopicDifference] = []
        present = [spec for spec in specs if spec.name in existing]
        if present:
            described = await admin.describe_topics([spec.name for spec in present])
            partitions_of = {entry["topic"]: len(entry["partitions"]) for entry in described}
            for spec in present:
                actual = partitions_of.get(spec.name)
                if actual is not None and actual != spec.partitions:
                    differences.append(
                        TopicDifference(spec.name, "partitions", str(spec.partitions), str(actual))
                    )
        return [spec.name for spec in missing], differences
    finally:
        await admin.close()
