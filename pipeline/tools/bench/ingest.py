"""``pipeline bench ingest``: how fast a worker applies events, against what Kafka and Faust
alone cost on the same messages, in the same run.

For each envelope size (events per Kafka message) the same synthetic traffic is published
once; then, over the topics each run reads:

- a raw aiokafka consumer reads and JSON-decodes every message (the floor of any consumer);
- a bare Faust agent, with the worker's Faust settings, counts the messages (the floor of
  any Faust agent; with envelopes, the median of :data:`BARE_RUNS_WITH_ENVELOPES` runs);
- ``pipeline worker --agents ...`` applies them, timed from the first fence that moves to the
  last message applied (start-up and group join excluded, as for the bare agent).

The ratio that matters is the worker's events per second over the bare agent's messages per
second: with envelopes, one message carries many events, so a worker can beat it.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from pipeline.core.settings import Settings, to_env
from pipeline.features.registry import AGENT_GROUPS, declared_topics
from pipeline.store.redis import connect
from pipeline.tools.bench.common import (
    Progress,
    Published,
    fresh_settings,
    median,
    publish,
    report,
    retag,
    services,
    start_worker,
    topics_of,
    wait_applied,
    world,
)
from pipeline.tools.local import spawn

# The targets: run -> envelope -> least ratio to the bare agent.
TARGETS = {"default": {1: 0.5, 20: 3.0}, "personal": {1: 0.8}}
# With envelopes the bare agent counts a few thousand messages, a fraction of a second from
# its first to its last: one slow fetch can cut its rate by two thirds (4,000 against
# 11,000-16,000 messages/s, run to run). Its median of this many runs is the baseline then.
BARE_RUNS_WITH_ENVELOPES = 3
COLUMNS = [
    ("profile", "profile"),
    ("run", "run"),
    ("envelope", "events/msg"),
    ("events", "events"),
    ("events_per_s", "worker ev/s"),
    ("bare_faust_msgs_per_s", "bare Faust msg/s"),
    ("vs_bare_faust", "ratio"),
    ("raw_consumer_msgs_per_s", "raw consumer msg/s"),
    ("target", "target"),
]


async def raw_consumer(settings: Settings, names: set[str], messages: int) -> float:
    """Seconds a bare aiokafka consumer takes to read and decode ``messages`` messages."""
    consumer = AIOKafkaConsumer(
        *sorted(names),
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    seen, started = 0, 0.0
    try:
        while seen < messages:
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for records in batch.values():
                if not started:
                    started = time.perf_counter()
                for record in records:
                    orjson.loads(record.value)
                seen += len(records)
        return time.perf_counter() - started
    finally:
        await consumer.stop()


async def bare_faust(settings: Settings, names: set[str], messages: int, log: Path) -> float:
    """Seconds the bare Faust agent takes from its first message to its last."""
    out = log.with_suffix(".json")
    out.unlink(missing_ok=True)
    env = {**os.environ, **to_env(retag(settings))}
    argv = [sys.executable, "-m", "pipeline.tools.bench.bare", "faust", ",".join(sorted(names))]
    process = spawn("bare-faust", [*argv, str(messages), str(out)], log, env)
    try:
        deadline = time.monotonic() + 600
        while not out.exists() or not out.stat().st_size:
            if process.process.poll() is not None and not out.exists():
                raise RuntimeError(f"the bare Faust agent exited early; see {log}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the bare Faust agent did not finish; see {log}")
            await asyncio.sleep(0.05)
        result = orjson.loads(out.read_bytes())
        return float(result["last"] - result["first"])
    finally:
        process.stop()


async def worker_run(
    settings: Settings, groups: list[str], published: Published, log: Path, progress: Progress
) -> tuple[float, int]:
    """(seconds, events) of a worker running ``groups`` over the published traffic."""
    topics = declared_topics(settings)
    expected = {
        group: published.count(topics_of(topics, [group]))[0]
        for group in groups
        if topics.for_agent(group)
    }
    events = published.count(topics_of(topics, groups))[1]
    process = start_worker(settings, groups, log)
    store = connect(settings)
    try:
        first, last = await wait_applied(store, settings, expected, 600, log, progress)
        return last - first, events
    finally:
        await store.close()
        process.stop()


async def run(
    events: int,
    envelopes: list[int],
    runs: list[str],
    repeat: int,
    progress: Progress,
    profile_name: str = "default",
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    logs = Path(tempfile.gettempdir()) / "pipeline-bench"
    logs.mkdir(exist_ok=True)
    with services() as found:
        for envelope in envelopes:
            settings = fresh_settings(found)
            progress.note(f"publishing {events:,} {profile_name} events, {envelope} per message")
            source = world(profile_name=profile_name, events=events)
            published = await publish(settings, source, events, envelope)
            topics = declared_topics(settings)
            for name in runs:
                groups = list(AGENT_GROUPS) if name == "default" else name.split("+")
                names = topics_of(topics, groups)
                messages, applied_events = published.count(names)
                floor, bare, ours = [], [], []
                for attempt in range(repeat):
                    progress.note(f"{name}, {envelope} per message, run {attempt + 1}/{repeat}")
                    floor.append(await raw_consumer(retag(settings), names, messages))
                    bare.append(await bare_faust(settings, names, messages, logs / "bare.log"))
                    seconds, _ = await worker_run(
                        retag(settings), groups, published, logs / f"worker-{name}.log", progress
                    )
                    ours.append(seconds)
                for attempt in range(repeat, BARE_RUNS_WITH_ENVELOPES if envelope > 1 else 0):
                    progress.note(f"{name}, {envelope} per message, bare agent {attempt + 1}")
                    bare.append(await bare_faust(settings, names, messages, logs / "bare.log"))
                measured = row(
                    name,
                    envelope,
                    messages,
                    applied_events,
                    median(ours),
                    median(bare),
                    median(floor),
                    len(bare),
                )
                rows.append({"profile": profile_name, **measured})
    return rows


def row(
    name: str,
    envelope: int,
    messages: int,
    events: int,
    ours: float,
    bare: float,
    floor: float,
    bare_runs: int = 1,
) -> dict[str, Any]:
    events_per_s = events / ours if ours > 0 else 0.0
    bare_rate = messages / bare if bare > 0 else 0.0
    ratio = events_per_s / bare_rate if bare_rate else 0.0
    wanted = TARGETS.get(name, {}).get(envelope)
    target = "" if wanted is None else f">= {wanted:g}x: {'met' if ratio >= wanted else 'MISSED'}"
    return {
        "run": name,
        "envelope": envelope,
        "messages": messages,
        "events": events,
        "events_per_s": events_per_s,
        "bare_faust_msgs_per_s": bare_rate,
        "bare_faust_runs": bare_runs,
        "vs_bare_faust": ratio,
        "raw_consumer_msgs_per_s": messages / floor if floor > 0 else 0.0,
        "target": target,
    }


def main(
    events: int,
    envelopes: list[int],
    runs: list[str],
    repeat: int,
    as_json: bool,
    profile_name: str = "default",
) -> str:
    progress = Progress("ingest")
    rows = asyncio.run(run(events, envelopes, runs, repeat, progress, profile_name))
    return report(rows, COLUMNS, as_json)
