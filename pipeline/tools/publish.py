"""Publishing to Kafka from the command line: JSONL files and synthetic traffic."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import IO, Any

import orjson

from pipeline.core.events import decode_json, event_from_dict
from pipeline.core.ids import InvalidInput
from pipeline.core.items import item_from_dict
from pipeline.core.settings import Settings
from pipeline.core.topics import Topics
from pipeline.features.registry import declared_topics
from pipeline.stream.kafka import kafka_producer

# Flush every this many sends so memory stays bounded and errors surface early.
_FLUSH_EVERY = 5000


def route(
    record: dict[str, Any], topics: Topics, catalog: bool, now_ms: int, settings: Settings
) -> tuple[str, bytes, bytes]:
    """Validate one record; return (topic, key, value). Raises InvalidInput."""
    if catalog:
        item = item_from_dict(record)
        return topics.catalog.name, item.item_id.encode(), orjson.dumps(item.to_dict())
    event = event_from_dict(record, now_ms, int(settings.max_future_skew_s * 1000))
    return topics.for_event_type(event.event_type), event.user_id.encode(), event.to_json()


async def _send_all(producer: Any, messages: Iterable[tuple[str, bytes, bytes]]) -> int:
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
    topics = declared_topics(settings)
    errors: list[tuple[int, str]] = []
    now_ms = int(time.time() * 1000)

    def valid_messages() -> Iterable[tuple[str, bytes, bytes]]:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                yield route(decode_json(line), topics, catalog, now_ms, settings)
            except InvalidInput as exc:
                errors.append((number, str(exc)))

    async with kafka_producer(settings) as producer:
        sent = await _send_all(producer, valid_messages())
    return sent, errors


async def publish_synthetic(settings: Settings, world: Any, count: int | None, rate: float) -> int:
    """Publish the world's catalog, then its events at ``rate`` per second (0: flat out).

    Event timestamps are the generator's (which starts now when run by the CLI), and
    sending waits for the wall clock to reach each one, so traffic looks live.
    """
    topics = declared_topics(settings)
    now_ms = int(time.time() * 1000)
    async with kafka_producer(settings) as producer:
        await _send_all(
            producer, (route(item, topics, True, now_ms, settings) for item in world.catalog())
        )
        sent = 0
        pending: list[Any] = []
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
