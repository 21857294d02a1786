"""Reading and replaying the dead-letter topic (``pipeline deadletters``).

Dead letters are read from the start of the topic up to the high-water mark each partition's
fetches report (the embedded broker answers ListOffsets(LATEST) wrongly, fetches rightly), then
filtered by time and reason. Replaying re-publishes the original bytes with the original key
to the topic they came from; a dead letter that kept only a prefix of its message (over
``PIPELINE_DEAD_LETTER_MAX_VALUE_BYTES``) cannot be replayed and is counted as such. The
record format is :mod:`pipeline.core.deadletters`.
"""

from __future__ import annotations

import re
import time
from collections import Counter, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from pipeline.core.deadletters import original_of
from pipeline.core.settings import Settings
from pipeline.stream.kafka import kafka_producer, kafka_security

# Characters of the reasons shown on one line of the listing.
REASONS_SHOWN = 160
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str, now_ms: int | None = None) -> int:
    """``--since``: a duration back from now (``90s``, ``15m``, ``2h``, ``7d``, ``1w``) or an
    ISO-8601 time (UTC when it has no offset), as epoch milliseconds."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    text = text.strip()
    match = _DURATION.fullmatch(text)
    if match:
        return now_ms - int(float(match.group(1)) * _UNIT_S[match.group(2)] * 1000)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"--since {text!r}: give a duration (90s, 15m, 2h, 7d, 1w) or an ISO-8601 time"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round(moment.timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One record of the dead-letter topic, and where it sits in that topic."""

    partition: int
    offset: int
    key: bytes | None
    record: dict[str, Any]

    @property
    def rejected_at_ms(self) -> int:
        value = self.record.get("rejected_at")
        return value if isinstance(value, int) else 0

    @property
    def reasons(self) -> list[str]:
        listed = self.record.get("reasons")
        if isinstance(listed, list):
            return [str(entry.get("reason", "")) for entry in listed if isinstance(entry, dict)]
        return [str(self.record.get("reason", ""))]

    def matches(self, since_ms: int | None, reason: str | None) -> bool:
        if since_ms is not None and self.rejected_at_ms < since_ms:
            return False
        return reason is None or any(reason.lower() in text.lower() for text in self.reasons)

    def line(self) -> str:
        """time, source topic/partition/offset, groups, size, reasons (the first ones)."""
        record = self.record
        moment = datetime.fromtimestamp(self.rejected_at_ms / 1000, UTC)
        when = moment.isoformat(timespec="seconds").replace("+00:00", "Z")
        where = f"{record.get('topic')}/{record.get('partition')}/{record.get('offset')}"
        size = record.get("size")
        if size is None:
            # Dead letters written before ``size`` existed: the length of the kept original.
            original = original_of(record).value
            size = None if original is None else len(original)
        size_text = "no value" if size is None else f"{size} B"
        listed = record.get("reasons")
        entries = listed if isinstance(listed, list) else [record]
        parts = [
            str(entry.get("reason"))
            if entry.get("index") is None
            else f"[{entry.get('index')}] {entry.get('reason')}"
            for entry in entries
            if isinstance(entry, dict)
        ]
        text = "; ".join(parts)
        if len(text) > REASONS_SHOWN:
            text = text[: REASONS_SHOWN - 3] + "..."
        rejected = record.get("rejected")
        if isinstance(rejected, int) and rejected > 1:
            text = f"{rejected} rejected: {text}"
        return f"{when}  {where}  {record.get('agent')}  {size_text}  {text}"


@dataclass
class Reading:
    """What a read found: the matching dead letters and the records that were not JSON."""

    letters: list[DeadLetter] = field(default_factory=list)
    scanned: int = 0
    unreadable: int = 0


async def iter_dead_letters(
    settings: Settings, topic: str, reading: Reading, timeout_s: float = 60.0
) -> AsyncIterator[DeadLetter]:
    """Every dead letter in ``topic`` now, partition by partition in offset order."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=100,
        **kafka_security(settings),
    )
    await consumer.start()
    try:
        if topic not in await consumer.topics():
            raise LookupError(f"topic {topic} does not exist (run `pipeline topics apply`)")
        partitions = sorted(consumer.partitions_for_topic(topic) or ())
        pending = {TopicPartition(topic, partition) for partition in partitions}
        consumer.assign(list(pending))
        await consumer.seek_to_beginning(*pending)
        deadline = time.monotonic() + timeout_s
        while pending:
            batch = await consumer.getmany(*pending, timeout_ms=200, max_records=1000)
            for tp, records in sorted(batch.items()):
                for message in records:
                    reading.scanned += 1
                    try:
                        record = orjson.loads(message.value or b"")
                    except orjson.JSONDecodeError:
                        record = None
                    if not isinstance(record, dict):
                        reading.unreadable += 1
                        continue
                    yield DeadLetter(tp.partition, message.offset, message.key, record)
            for tp in list(pending):
                highwater = consumer.highwater(tp)
                if highwater is not None and await consumer.position(tp) >= highwater:
                    pending.discard(tp)
            if pending and time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic} took longer than {timeout_s:.0f} s")
    finally:
        await consumer.stop()


async def read_dead_letters(
    settings: Settings,
    topic: str,
    since_ms: int | None = None,
    reason: str | None = None,
    limit: int | None = None,
) -> Reading:
    """The matching dead letters, oldest first; with ``limit``, the latest ``limit`` of them."""
    reading = Reading()
    kept: deque[DeadLetter] = deque(maxlen=limit)
    async for letter in iter_dead_letters(settings, topic, reading):
        if letter.matches(since_ms, reason):
            kept.append(letter)
    reading.letters = sorted(kept, key=lambda letter: (letter.rejected_at_ms, letter.offset))
    return reading


@dataclass
class Replay:
    """What a replay did: messages re-published, and why the others could not be."""

    matched: int = 0
    sent: int = 0
    to_topics: Counter[str] = field(default_factory=Counter)
    not_replayable: Counter[str] = field(default_factory=Counter)

    @property
    def skipped(self) -> int:
        return sum(self.not_replayable.values())


async def replay_dead_letters(
    settings: Settings,
    topic: str,
    since_ms: int | None = None,
    reason: str | None = None,
    to_topic: str | None = None,
) -> tuple[Reading, Replay]:
    """Re-publish the original of every matching dead letter that holds it whole, with its
    key, to its source topic (or ``to_topic``)."""
    reading = Reading()
    outcome = Replay()
    async with kafka_producer(settings) as producer:
        pending = []
        async for letter in iter_dead_letters(settings, topic, reading):
            if not letter.matches(since_ms, reason):
                continue
            outcome.matched += 1
            original = original_of(letter.record)
            target = to_topic or letter.record.get("topic")
            if original.value is None or not isinstance(target, str):
                outcome.not_replayable[original.missing or "no source topic"] += 1
                continue
            pending.append(await producer.send(target, value=original.value, key=letter.key))
            outcome.sent += 1
            outcome.to_topics[target] += 1
        for future in pending:
            await future
    return reading, outcome
