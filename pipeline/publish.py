"""Publishing to Kafka from the command line: JSONL files and synthetic traffic."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import IO, Any

import orjson
from aiokafka import AIOKafkaProducer

from pipeline.events import InvalidEvent, decode_json, event_from_dict, item_from_dict
from pipeline.settings import Settings
from pipeline.topics import Topics, load_topics

# Flush every this many sends so memory stays bounded and errors surface early.
_FLUSH_EVERY = 5000


@asynccontextmanager
async def kafka_producer(settings: Settings) -> AsyncIterator[AIOKafkaProducer]:
    # No idempotence: the embedded broker (Tansu) cannot hand out producer ids;
    # replays are harmless because agents fence offsets and events carry unique ids.
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        linger_ms=10,
        acks="all",
        enable_idempotence=False,
    )
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


def route(
    record: dict[str, Any], topics: Topics, catalog: bool, now_ms: int, settings: Settings
) -> tuple[str, bytes, bytes]:
    """Validate one record; return (topic, key, value). Raises InvalidEvent."""
    if catalog:
        item = item_from_dict(record)
        return topics.catalog.name, item.item_id.encode(), orjson.dumps(item.to_dict())
    event = event_from_dict(record, now_ms, int(settings.max_future_skew_s * 1000))
    return topics.for_event_type(event.event_type), event.user_id.encode(), event.to_json()


async def _send_all(
    producer: AIOKafkaProducer, messages: Iterable[tuple[str, bytes, bytes]]
) -> int:
    pending = []
    sent = 0
    for topic, key, value in messages:
        pending.append(await producer.send(topic, value=value, key=key))
        if len(pending) >= _FLUSH_EVERY:
            await asyncio.gather(*pending)
            sent += len(pending)
            pending.clear()
    await asyncio.gather(*pending)
    return sent + len(pending)


async def publish_lines(
    settings: Settings, lines: IO[bytes], catalog: bool = False
) -> tuple[int, list[tuple[int, str]]]:
    """Publish valid JSONL records; return (sent, [(line number, reason)])."""
    topics = load_topics(settings.topics_file, settings.topic_prefix)
    errors: list[tuple[int, str]] = []
    now_ms = int(time.time() * 1000)

    def valid_messages() -> Iterable[tuple[str, bytes, bytes]]:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                yield route(decode_json(line), topics, catalog, now_ms, settings)
            except InvalidEvent as exc:
                errors.append((number, str(exc)))

    async with kafka_producer(settings) as producer:
        sent = await _send_all(producer, valid_messages())
    return sent, errors


async def publish_synthetic(settings: Settings, world: Any, count: int | None, rate: float) -> int:
    """Publish the world's catalog, then its events at ``rate`` per second (0: flat out).

    Event timestamps are the generator's (which starts now when run by the CLI), and
    sending waits for the wall clock to reach each one, so traffic looks live.
    """
    topics = load_topics(settings.topics_file, settings.topic_prefix)
    now_ms = int(time.time() * 1000)
    async with kafka_producer(settings) as producer:
        await _send_all(
            producer, (route(item, topics, True, now_ms, settings) for item in world.catalog())
        )
        sent = 0
        pending = []
        for record in world.events(count):
            if rate > 0:
                delay = record["timestamp"] / 1000.0 - time.time()
                if delay > 0:
                    await asyncio.gather(*pending)
                    pending.clear()
                    await asyncio.sleep(delay)
            topic, key, value = route(
                record, topics, False, int(time.time() * 1000) + 60_000, settings
            )
            pending.append(await producer.send(topic, value=value, key=key))
            sent += 1
            if len(pending) >= _FLUSH_EVERY:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    return sent
