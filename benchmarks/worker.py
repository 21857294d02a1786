"""End-to-end agent throughput on a real broker and Redis: ``python -m benchmarks.worker``.

Publishes synthetic events, starts one worker for an agent group, and measures events
applied per second from the first applied batch to the last (the worker's start-up and
group join are excluded). Baseline, in the same run: a bare aiokafka consumer reading the
same messages and doing nothing with them, the floor that any agent pays.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer

from pipeline.core.keys import Keys
from pipeline.core.settings import Settings, load_settings, to_env
from pipeline.features.registry import declared_topics
from pipeline.store.redis import connect
from pipeline.stream.fence import applied_offsets
from pipeline.stream.kafka import apply_topics, kafka_producer
from pipeline.tools.local import free_port, spawn, start_broker, start_redis
from pipeline.tools.synthetic import SyntheticConfig, SyntheticWorld

ROOT = Path(__file__).resolve().parent.parent


async def publish(settings: Settings, n: int, envelope: int) -> int:
    """Publish ``n`` events, ``envelope`` per message (1: one event per message)."""
    topics = declared_topics(settings)
    world = SyntheticWorld(SyntheticConfig(seed=11, start_ms=int(time.time() * 1000) - 3_600_000))
    by_topic: dict[tuple[str, str], list[bytes]] = {}
    messages = 0
    async with kafka_producer(settings) as producer:
        for item in world.catalog():
            await producer.send(
                topics.catalog.name, orjson.dumps(item), key=item["item_id"].encode()
            )
        for event in world.events(n):
            key = (topics.for_event_type(event["type"]), event["user_id"])
            bucket = by_topic.setdefault(key, [])
            bucket.append(orjson.dumps(event))
            if len(bucket) >= envelope:
                value = bucket[0] if envelope == 1 else b"[" + b",".join(bucket) + b"]"
                await producer.send(key[0], value, key=key[1].encode())
                messages += 1
                bucket.clear()
        for (topic, user), bucket in by_topic.items():
            if bucket:
                await producer.send(topic, b"[" + b",".join(bucket) + b"]", key=user.encode())
                messages += 1
        await producer.flush()
    return messages


async def consume_floor(settings: Settings, agent: str, messages: int) -> float:
    topics = declared_topics(settings)
    names = [spec.name for spec in topics.for_agent(agent)]
    consumer = AIOKafkaConsumer(
        *names,
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen, started = 0, time.perf_counter()
    try:
        async for message in consumer:
            orjson.loads(message.value)
            seen += 1
            if seen == messages:
                break
    finally:
        await consumer.stop()
    return time.perf_counter() - started


async def run_worker(settings: Settings, agent: str, messages: int, log: Path) -> float:
    env = {**os.environ, **to_env(settings)}
    worker = spawn(
        "worker", [sys.executable, "-m", "pipeline", "worker", "--agents", agent], log, env
    )
    store = connect(settings)
    keys = Keys(settings.key_prefix)
    try:
        first: tuple[float, int] | None = None
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            done = sum(o + 1 for o in (await applied_offsets(store, keys, agent)).values())
            if done and first is None:
                first = (time.perf_counter(), done)
            if done >= messages and first is not None:
                return (time.perf_counter() - first[0]) * messages / max(messages - first[1], 1)
            await asyncio.sleep(0.05)
        raise RuntimeError(f"worker did not finish; see {log}")
    finally:
        await store.close()
        worker.stop()


async def main(n: int, agents: list[str], envelope: int) -> None:
    broker, redis_server = start_broker(free_port()), start_redis(free_port())
    try:
        print(
            f"{'agent group':<12} {'envelope':>8} {'agent ev/s':>11} {'bare consumer ev/s':>19} {'ratio':>6}"
        )
        for agent in agents:
            tag = f"b{uuid.uuid4().hex[:8]}"
            settings = load_settings(
                kafka_bootstrap=broker.url,
                redis_url=redis_server.url,
                topic_prefix=f"{tag}.",
                key_prefix=tag,
                app_id=tag,
                topics_file=ROOT / "topics.yaml",
            )
            topics = declared_topics(settings)
            await apply_topics(settings.kafka_bootstrap, topics.specs)
            await publish(settings, n, envelope)
            names = {spec.name for spec in topics.for_agent(agent)}
            agent_messages, agent_events = await count_messages_and_events(settings, sorted(names))
            floor = await consume_floor(settings, agent, agent_messages)
            seconds = await run_worker(
                settings,
                agent,
                agent_messages,
                Path(tempfile.gettempdir()) / f"bench-worker-{agent}.log",
            )
            print(
                f"{agent:<12} {envelope:>8} {agent_events / seconds:>11,.0f} "
                f"{agent_events / floor:>19,.0f} {floor / seconds:>5.2f}x"
            )
    finally:
        redis_server.stop()
        broker.stop()


async def count_messages_and_events(settings: Settings, names: list[str]) -> tuple[int, int]:
    consumer = AIOKafkaConsumer(
        *names,
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    messages = events = 0
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            if not batch:
                return messages, events
            for records in batch.values():
                messages += len(records)
                for record in records:
                    decoded = orjson.loads(record.value)
                    events += len(decoded) if isinstance(decoded, list) else 1
    finally:
        await consumer.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--agents", default="trending,personal")
    parser.add_argument("--envelope", type=int, default=1, help="events per Kafka message")
    args = parser.parse_args()
    asyncio.run(main(args.events, args.agents.split(","), args.envelope))
