"""What the benchmarks share: services to run against, fresh namespaces, synthetic traffic,
waiting on fences, and the report (a table, or JSON with ``--json``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from pipeline.core.keys import Keys
from pipeline.core.settings import Settings, load_settings, to_env
from pipeline.core.topics import Topics
from pipeline.features.registry import declared_topics
from pipeline.store.base import Store
from pipeline.stream.kafka import apply_topics, kafka_producer
from pipeline.tools.local import ManagedProcess, free_port, spawn, start_broker, start_redis
from pipeline.tools.synthetic import SyntheticWorld, profile


@dataclass(frozen=True, slots=True)
class Services:
    kafka_bootstrap: str
    redis_url: str


@contextlib.contextmanager
def services() -> Iterator[Services]:
    """The embedded broker and redis-server on free ports, stopped on exit."""
    broker = start_broker(free_port())
    try:
        redis = start_redis(free_port())
    except Exception:
        broker.stop()
        raise
    try:
        yield Services(broker.url, redis.url)
    finally:
        redis.stop()
        broker.stop()


def fresh_settings(found: Services, **overrides: Any) -> Settings:
    """Settings with their own topics, keys and consumer groups (nothing shared by runs)."""
    tag = f"b{uuid.uuid4().hex[:8]}"
    values: dict[str, Any] = {
        "kafka_bootstrap": found.kafka_bootstrap,
        "redis_url": found.redis_url,
        "topic_prefix": f"{tag}.",
        "key_prefix": tag,
        "app_id": tag,
    }
    values.update(overrides)
    return load_settings(**values)


def retag(settings: Settings) -> Settings:
    """The same topics, but new keys and consumer groups: another run over the same data."""
    tag = f"b{uuid.uuid4().hex[:8]}"
    return settings.model_copy(update={"key_prefix": tag, "app_id": tag})


def world(
    events_per_second: float = 50.0,
    seed: int = 11,
    profile_name: str = "default",
    events: int = 0,
    **overrides: Any,
) -> SyntheticWorld:
    """Synthetic traffic of a named profile (``pipeline generate --profile``) whose first
    ``events`` timestamps end before now, the last of them less than a minute before when
    they span more than an hour (else they start an hour ago: trending reads the current
    hour). Events stamped after now would be rejected as from the future."""
    span_ms = events / events_per_second * 1000.0
    start = int(time.time() * 1000 - max(3_600_000.0, span_ms + 60_000.0))
    config = profile(profile_name, seed=seed, start_ms=start, events_per_second=events_per_second)
    if overrides:
        config = profile(profile_name, **{**_fields(config), **overrides})
    return SyntheticWorld(config)


def _fields(config: Any) -> dict[str, Any]:
    return {name: getattr(config, name) for name in config.__dataclass_fields__}


@dataclass
class Published:
    """What was published: messages and events per topic."""

    messages: dict[str, int] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=dict)

    def count(self, topics: set[str]) -> tuple[int, int]:
        messages = sum(n for name, n in self.messages.items() if name in topics)
        events = sum(n for name, n in self.events.items() if name in topics)
        return messages, events


async def publish(settings: Settings, source: SyntheticWorld, n: int, envelope: int) -> Published:
    """The catalog, then ``n`` events, ``envelope`` per message (per topic and user)."""
    topics = declared_topics(settings)
    await apply_topics(settings.kafka_bootstrap, topics.specs)
    out = Published()
    buckets: dict[tuple[str, str], list[bytes]] = {}

    async def send(producer: Any, topic: str, key: str, values: list[bytes]) -> None:
        value = values[0] if len(values) == 1 else b"[" + b",".join(values) + b"]"
        await producer.send(topic, value, key=key.encode())
        out.messages[topic] = out.messages.get(topic, 0) + 1
        out.events[topic] = out.events.get(topic, 0) + len(values)

    async with kafka_producer(settings) as producer:
        catalog = topics.catalog.name
        for item in source.catalog():
            await send(producer, catalog, item["item_id"], [orjson.dumps(item)])
        for event in source.events(n):
            key = (topics.for_event_type(event["type"]), event["user_id"])
            bucket = buckets.setdefault(key, [])
            bucket.append(orjson.dumps(event))
            if len(bucket) >= envelope:
                await send(producer, key[0], key[1], bucket)
                buckets[key] = []
        for (topic, user), bucket in buckets.items():
            if bucket:
                await send(producer, topic, user, bucket)
        await producer.flush()
    return out


def topics_of(topics: Topics, groups: list[str]) -> set[str]:
    return {spec.name for group in groups for spec in topics.for_agent(group)}


def start_worker(settings: Settings, groups: list[str], log: Path) -> ManagedProcess:
    env = {**os.environ, **to_env(settings)}
    argv = [sys.executable, "-m", "pipeline", "worker", "--agents", ",".join(groups)]
    return spawn("worker", argv, log, env)


async def wait_applied(
    store: Store,
    settings: Settings,
    expected: dict[str, int],
    timeout_s: float,
    log: Path,
    progress: Progress | None = None,
) -> tuple[float, float]:
    """Poll the fences until every group applied its ``expected`` messages; returns the
    (start, end) perf_counter moments: the last poll that saw no fence moved, and the first
    that saw all complete. Polling every 20 ms makes the span at most 40 ms too long, never
    too short, so a tiny run is timed slower than it is, not as instantaneous.

    Each poll reads the fences of the partitions topics.yaml declares for the groups (the
    benchmarks create their topics so) with one MGET: the poll must not load the Redis the
    worker under test shares the machine with (a SCAN per group and poll, walking a keyspace
    of hundreds of thousands of keys, took a third of a core while the baseline it is
    compared with is timed without Redis)."""
    keys = Keys(settings.key_prefix)
    topics = declared_topics(settings)
    fences = [
        (group, keys.fence(group, spec.name, partition))
        for group in expected
        for spec in topics.for_agent(group)
        for partition in range(spec.partitions)
    ]
    first: float | None = None
    idle = time.perf_counter()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done = dict.fromkeys(expected, 0)
        values = await store.mget([key for _, key in fences]) if fences else []
        for (group, _), value in zip(fences, values, strict=True):
            if value is not None:
                done[group] += int(value) + 1
        now = time.perf_counter()
        if progress is not None:
            progress.bar("applied messages", sum(done.values()), sum(expected.values()))
        if first is None:
            if any(done.values()):
                first = idle
            else:
                idle = now
        if first is not None and all(done[g] >= n for g, n in expected.items()):
            return first, now
        await asyncio.sleep(0.02)
    raise RuntimeError(
        f"the worker did not apply every message within {timeout_s:.0f} s; see {log}"
    )


class Progress:
    """Progress of a long benchmark on stderr: ``note`` prints a line; ``bar`` redraws one
    line in place on a terminal, and prints every tenth otherwise (logs stay short)."""

    WIDTH = 30

    def __init__(self, name: str) -> None:
        self.name = name
        self.live = sys.stderr.isatty()
        self._tenth = -1

    def note(self, text: str) -> None:
        self._tenth = -1
        print(f"[{self.name}] {text}", file=sys.stderr, flush=True)

    def bar(self, label: str, done: int, total: int) -> None:
        share = min(1.0, done / total) if total > 0 else 1.0
        if self.live:
            filled = int(share * self.WIDTH)
            line = f"[{self.name}] {label} [{'#' * filled}{'.' * (self.WIDTH - filled)}]"
            end = "\n" if share >= 1.0 else ""
            print(f"\r{line} {done:,}/{total:,}", end=end, file=sys.stderr, flush=True)
        elif int(share * 10) > self._tenth:
            self._tenth = int(share * 10)
            print(f"[{self.name}] {label} {done:,}/{total:,}", file=sys.stderr, flush=True)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def report(rows: list[dict[str, Any]], columns: list[tuple[str, str]], as_json: bool) -> str:
    """Rows as JSON lines' one document, or a table with ``columns`` (key, heading)."""
    if as_json:
        return orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode()
    cells = [[heading for _, heading in columns]]
    for row in rows:
        cells.append([_cell(row.get(key)) for key, _ in columns])
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = []
    for index, line in enumerate(cells):
        lines.append(
            "  ".join(
                cell.rjust(w) if i else cell.ljust(w)
                for i, (cell, w) in enumerate(zip(line, widths, strict=True))
            )
        )
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
