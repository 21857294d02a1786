"""``pipeline status``: how far each agent group is, what Redis holds, recent dead letters.

Everything is read, nothing written: the offset fences in Redis (the last offset each agent
group applied per partition), the partitions' end offsets from the broker (the high-water marks
of a short-lived consumer outside any consumer group), Redis's used memory, key counts per key
family of the schema in ``pipeline.core.keys`` (SCAN, capped), and how many dead letters the
last hour brought (offsets by timestamp: no message is read).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from pipeline.core.keys import Keys
from pipeline.core.settings import Settings
from pipeline.core.topics import Topics
from pipeline.features.registry import AGENT_GROUPS
from pipeline.store.redis import RedisStore, connect
from pipeline.stream.fence import applied_offsets
from pipeline.stream.kafka import kafka_security

# Most keys SCAN visits before the counts stop (then marked as a lower bound).
DEFAULT_SCAN_CAP = 200_000
# Families whose second key part names the family too (``related:{relation}:...``).
_TWO_PART = frozenset({"related", "segment", "content", "personal", "rank", "mf", "items"})


@dataclass(frozen=True, slots=True)
class PartitionStatus:
    group: str
    topic: str
    partition: int
    # Last offset the group applied (None: nothing yet); end: the partition's next offset.
    applied: int | None
    end: int | None

    @property
    def lag(self) -> int | None:
        if self.end is None:
            return None
        return max(self.end - (self.applied + 1 if self.applied is not None else 0), 0)

    @property
    def fence_ahead(self) -> bool:
        """The group's fence is at or past the partition's end: the partition's offsets
        restarted (``pipeline fences reset``)."""
        return self.applied is not None and self.end is not None and self.applied >= self.end


@dataclass(slots=True)
class Status:
    partitions: list[PartitionStatus] = field(default_factory=list)
    redis_used_memory: int | None = None
    keys: dict[str, int] = field(default_factory=dict)
    keys_scanned: int = 0
    keys_capped: bool = False
    dead_letters_last_hour: int | None = None
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        body["partitions"] = [
            {**asdict(p), "lag": p.lag, "fence_ahead": p.fence_ahead} for p in self.partitions
        ]
        return body


def key_family(key: str, prefix: str) -> str:
    """The family of a key of the schema (``pipeline.core.keys``), ids replaced by ``*``:
    ``rec:user:alice:history`` -> ``user:*:history``."""
    rest = key[len(prefix) + 1 :] if key.startswith(prefix + ":") else key
    head, _, tail = rest.partition(":")
    if head == "user":
        parts = tail.split(":")
        if len(parts) >= 3 and parts[-2] == "segments":
            return "user:*:segments"
        return f"user:*:{parts[-1]}" if len(parts) >= 2 else "user"
    if head == "foryou":
        return "foryou:pending" if tail == "pending" else "foryou:*"
    if head in _TWO_PART and tail:
        return f"{head}:{tail.partition(':')[0]}"
    return head


async def count_keys(store: RedisStore, keys: Keys, cap: int) -> tuple[dict[str, int], int, bool]:
    """Keys per family (SCAN of the prefix), how many were scanned, and whether ``cap``
    stopped the scan first."""
    families: Counter[str] = Counter()
    scanned = 0
    async for raw in store.redis.scan_iter(match=keys.pattern(), count=1000):
        if scanned >= cap:
            return dict(families), scanned, True
        scanned += 1
        families[key_family(raw.decode("utf-8", "replace"), keys.prefix)] += 1
    return dict(families), scanned, False


async def end_offsets(
    settings: Settings,
    tps: list[TopicPartition],
    since_ms: int,
    dead_letter: str,
    timeout_s: float = 10.0,
) -> tuple[dict[TopicPartition, int], int]:
    """End offsets of ``tps``, and how many messages the dead-letter topic got since
    ``since_ms`` (its end minus the first offset at or after that time, per partition).

    An end offset is the high-water mark of one small fetch per partition (at most one
    record batch is read, and dropped): the embedded broker answers ListOffsets with the
    number of record batches, not of records. Where no fetch answers within ``timeout_s``,
    ListOffsets stands in.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        enable_auto_commit=False,
        group_id=None,
        request_timeout_ms=10_000,
        max_partition_fetch_bytes=1024,
        **kafka_security(settings),
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(dead_letter) or set()
        dead = [TopicPartition(dead_letter, p) for p in sorted(partitions)]
        wanted = sorted({*tps, *dead})
        ends = dict(await consumer.end_offsets(wanted))
        consumer.assign(wanted)
        await consumer.seek_to_beginning(*wanted)
        deadline = time.monotonic() + timeout_s
        pending = set(wanted)
        while pending and time.monotonic() < deadline:
            await consumer.getmany(timeout_ms=200, max_records=len(wanted))
            for tp in list(pending):
                highwater = consumer.highwater(tp)
                if highwater is not None:
                    ends[tp] = max(ends.get(tp, 0), highwater)
                    pending.discard(tp)
        recent = 0
        if dead:
            found = await consumer.offsets_for_times(dict.fromkeys(dead, since_ms))
            for tp in dead:
                start = found.get(tp)
                if start is not None:
                    recent += max(ends[tp] - start.offset, 0)
        return ends, recent
    finally:
        await consumer.stop()


async def collect_status(
    settings: Settings,
    topics: Topics,
    groups: list[str] | None = None,
    scan_cap: int = DEFAULT_SCAN_CAP,
    timeout_s: float = 15.0,
) -> Status:
    """The status of ``groups`` (every agent group: None); a part that fails or times out
    is reported in ``errors`` and the rest still answers."""
    keys = Keys(settings.key_prefix)
    status = Status()
    store = connect(settings, timeout_s=timeout_s)
    wanted = list(groups or AGENT_GROUPS)
    applied: dict[str, dict[str, int]] = {}
    try:
        for group in wanted:
            applied[group] = await applied_offsets(store, keys, group)
        info = await store.redis.info("memory")
        status.redis_used_memory = int(info.get("used_memory", 0))
        status.keys, status.keys_scanned, status.keys_capped = await asyncio.wait_for(
            count_keys(store, keys, scan_cap), timeout_s
        )
    except Exception as exc:  # reported: the broker's part may still answer
        status.errors.append(f"redis: {exc}")
    finally:
        await store.close()
    slots = [
        (group, spec.name, partition)
        for group in wanted
        for spec in topics.for_agent(group)
        for partition in range(spec.partitions)
    ]
    tps = sorted({TopicPartition(topic, partition) for _, topic, partition in slots})
    ends: dict[TopicPartition, int] = {}
    since_ms = int(time.time() * 1000) - 3_600_000
    try:
        ends, status.dead_letters_last_hour = await asyncio.wait_for(
            end_offsets(settings, tps, since_ms, topics.dead_letter.name), timeout_s
        )
    except Exception as exc:
        status.errors.append(f"kafka: {exc or type(exc).__name__}")
    for group, topic, partition in slots:
        done = applied.get(group, {}).get(f"{topic}:{partition}")
        end = ends.get(TopicPartition(topic, partition))
        status.partitions.append(PartitionStatus(group, topic, partition, done, end))
    return status


def _cell(value: int | None) -> str:
    return "-" if value is None else str(value)


def render(status: Status) -> str:
    """The human table."""
    lines = [f"{'group':<12} {'topic':<32} {'part':>4} {'applied':>10} {'end':>10} {'lag':>8}"]
    for p in status.partitions:
        lines.append(
            f"{p.group:<12} {p.topic:<32} {p.partition:>4} {_cell(p.applied):>10} "
            f"{_cell(p.end):>10} {_cell(p.lag):>8}"
            + ("  FENCE AHEAD: offsets restarted? pipeline fences reset" if p.fence_ahead else "")
        )
    memory = status.redis_used_memory
    lines.append("")
    lines.append(f"redis used memory: {'-' if memory is None else f'{memory / 2**20:.1f} MiB'}")
    bound = "at least " if status.keys_capped else ""
    lines.append(f"redis keys: {bound}{status.keys_scanned} scanned")
    for family, count in sorted(status.keys.items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"  {family:<28} {count:>10}")
    lines.append(f"dead letters in the last hour: {_cell(status.dead_letters_last_hour)}")
    lines.extend(f"error: {error}" for error in status.errors)
    return "\n".join(lines)
