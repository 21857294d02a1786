"""``pipeline bench freshness``: how long after an event is produced the reader reflects it,
with background traffic, against how long Kafka alone takes to deliver the same event.

Each probe is a first click by a new user; it is reflected when the user's for-you list
exists (``stage`` is no longer ``fallback``): the event went through Kafka, the worker
learned it, wrote the list, and the reader served it. The baseline is a bare consumer of the
same topic receiving the same probe message: the delivery floor any agent pays.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer

from pipeline.features.registry import declared_topics
from pipeline.stream.kafka import kafka_producer
from pipeline.tools.bench.common import Progress, report
from pipeline.tools.bench.stack import Stack, running_stack

COLUMNS = [
    ("rate", "background ev/s"),
    ("probes", "probes"),
    ("p50_ms", "p50 ms"),
    ("p95_ms", "p95 ms"),
    ("p99_ms", "p99 ms"),
    ("kafka_p50_ms", "Kafka p50 ms"),
    ("kafka_p99_ms", "Kafka p99 ms"),
    ("target", "target"),
]
# How often a probe asks the reader: a reflected probe is timed up to this much late. Every
# ask costs the reader, Redis and this process about a millisecond of the two cores the
# stack under test runs on (at 5 ms, a quarter of a core for this process alone while a
# probe waited): asking every 20 ms keeps the observer's share small.
POLL_S = 0.02
# A probe not reflected within this is counted as lost (the worker fell behind the load).
PROBE_TIMEOUT_S = 5.0


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


async def probe_all(
    stack: Stack, probes: int, progress: Progress
) -> tuple[list[float], list[float]]:
    """Latencies (ms) of the reader reflecting each probe, and of Kafka delivering it."""
    topic = declared_topics(stack.settings).for_event_type("click")
    tag = uuid.uuid4().hex[:8]
    sent: dict[str, float] = {}
    delivered: dict[str, float] = {}
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=stack.settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        # The worker's fetch wait: the floor is what the same consumer settings allow.
        fetch_max_wait_ms=stack.settings.worker_fetch_max_wait_ms,
    )
    await consumer.start()
    # Only the probes matter: skip what the warm-up and the traffic wrote before them.
    await consumer.seek_to_end()

    async def watch_kafka() -> None:
        prefix = f"probe-{tag}".encode()
        async for message in consumer:
            if message.key and message.key.startswith(prefix):
                delivered.setdefault(message.key.decode(), time.perf_counter())

    watcher = asyncio.create_task(watch_kafka())
    reflected: list[float] = []
    try:
        async with (
            kafka_producer(stack.settings) as producer,
            httpx.AsyncClient(base_url=stack.reader_url, timeout=5.0) as client,
        ):
            for number in range(probes):
                user = f"probe-{tag}-{number}"
                event = {
                    "event_id": f"{user}-e",
                    "type": "click",
                    "user_id": user,
                    "item_id": "item-1",
                    "timestamp": int(time.time() * 1000),
                }
                started = time.perf_counter()
                sent[user] = started
                await producer.send(topic, orjson.dumps(event), key=user.encode())
                deadline = started + PROBE_TIMEOUT_S
                while time.perf_counter() < deadline:
                    response = await client.get(f"/v1/users/{user}/recommendations")
                    if response.status_code == 200 and response.json()["stage"] != "fallback":
                        reflected.append((time.perf_counter() - started) * 1000.0)
                        break
                    await asyncio.sleep(POLL_S)
                progress.bar("probes", number + 1, probes)
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
    finally:
        watcher.cancel()
        await consumer.stop()
    kafka = [(delivered[u] - sent[u]) * 1000.0 for u in sent if u in delivered]
    return reflected, kafka


async def run(
    rates: list[float], probes: int, warmup: int, progress: Progress
) -> list[dict[str, Any]]:
    rows = []
    for rate in rates:
        progress.note(f"stack with {rate:,.0f} events/s of background traffic")
        async with running_stack(warmup, background_rate=rate) as stack:
            await asyncio.sleep(3.0)  # let the background traffic reach its rate
            reflected, kafka = await probe_all(stack, probes, progress)
        p99 = percentile(reflected, 0.99)
        target = ""
        if rate == 1000:
            target = f"p99 <= 300 ms: {'met' if reflected and p99 <= 300 else 'MISSED'}"
        rows.append(
            {
                "rate": rate,
                "probes": len(reflected),
                "lost": probes - len(reflected),
                "p50_ms": percentile(reflected, 0.5),
                "p95_ms": percentile(reflected, 0.95),
                "p99_ms": p99,
                "kafka_p50_ms": percentile(kafka, 0.5),
                "kafka_p99_ms": percentile(kafka, 0.99),
                "target": target,
            }
        )
    return rows


def main(rates: list[float], probes: int, warmup: int, as_json: bool) -> str:
    progress = Progress("freshness")
    return report(asyncio.run(run(rates, probes, warmup, progress)), COLUMNS, as_json)
