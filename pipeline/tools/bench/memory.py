"""``pipeline bench memory``: Redis memory as events keep coming from a fixed population.

Every agent group applies synthetic traffic of a saturated population (a fixed set of users,
no anonymous ids, a fixed catalog) straight through the batch loop against a real
redis-server (no broker: this measures state, not ingestion). Redis memory is read at each
checkpoint; once every user, item and pair has been seen, it must stop growing: every
structure is capped or expires, so memory follows users and items, never events.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

from pipeline.core.keys import Keys
from pipeline.core.settings import load_settings
from pipeline.features.registry import AGENT_GROUPS, declared_topics
from pipeline.store.redis import connect
from pipeline.stream.app import make_handler
from pipeline.stream.batch import Lane, RawMessage, process_lanes
from pipeline.stream.fence import Position
from pipeline.tools.bench.common import Progress, report
from pipeline.tools.local import free_port, start_redis
from pipeline.tools.synthetic import SyntheticWorld, profile

COLUMNS = [
    ("events", "events"),
    ("used_memory_mb", "Redis MB"),
    ("keys", "keys"),
    ("growth", "growth since previous"),
    ("target", "target"),
]
ENVELOPE = 20
BATCH_MESSAGES = 1000


async def run(
    checkpoints: list[int], users: int, items: int, progress: Progress
) -> list[dict[str, Any]]:
    server = start_redis(free_port())
    rate = 1000.0
    total = max(checkpoints)
    # All events in the past (the live future-skew check applies), within the dedup window.
    start = int(time.time() * 1000) - int(total / rate * 1000) - 60_000
    source = SyntheticWorld(
        profile(
            "default",
            seed=5,
            n_users=users,
            n_items=items,
            anonymous_fraction=0.0,
            events_per_second=rate,
            start_ms=start,
        )
    )
    try:
        settings = load_settings(redis_url=server.url, key_prefix="mem")
        keys = Keys(settings.key_prefix)
        topics = declared_topics(settings)
        lanes = []
        for group in AGENT_GROUPS:
            specs = topics.for_agent(group)
            lanes.append(
                Lane(make_handler(group, settings, keys), frozenset(s.name for s in specs))
            )
        store = connect(settings)
        redis = store.redis

        async def no_dead_letters(records: list[Any]) -> None:
            raise AssertionError("synthetic events are valid")

        catalog = [
            RawMessage(Position(topics.catalog.name, 0, i), None, orjson.dumps(item))
            for i, item in enumerate(source.catalog())
        ]
        await process_lanes(
            store,
            keys,
            [lane for lane in lanes if lane.handler.phase == 0],
            catalog,
            no_dead_letters,
        )
        event_lanes = [lane for lane in lanes if lane.handler.phase > 0]
        rows: list[dict[str, Any]] = []
        offsets: dict[str, int] = {}
        buckets: dict[tuple[str, str], list[bytes]] = {}
        pending: list[RawMessage] = []
        for done, event in enumerate(source.events(total), start=1):
            key = (topics.for_event_type(event["type"]), event["user_id"])
            bucket = buckets.setdefault(key, [])
            bucket.append(orjson.dumps(event))
            if len(bucket) == ENVELOPE:
                offset = offsets.get(key[0], 0)
                offsets[key[0]] = offset + 1
                value = b"[" + b",".join(bucket) + b"]"
                pending.append(RawMessage(Position(key[0], 0, offset), None, value))
                buckets[key] = []
            if len(pending) == BATCH_MESSAGES:
                await process_lanes(
                    store,
                    keys,
                    event_lanes,
                    pending,
                    no_dead_letters,
                    settings.dedup_window_s * 1000,
                    settings.dedup_max_ids,
                )
                pending = []
                progress.bar("events", done, total)
            if done in checkpoints:
                if pending:
                    await process_lanes(
                        store,
                        keys,
                        event_lanes,
                        pending,
                        no_dead_letters,
                        settings.dedup_window_s * 1000,
                        settings.dedup_max_ids,
                    )
                    pending = []
                info = await redis.info("memory")
                rows.append(
                    {
                        "events": done,
                        "used_memory_mb": info["used_memory"] / 2**20,
                        "keys": await redis.dbsize(),
                    }
                )
                progress.note(f"{done:,} events: {rows[-1]['used_memory_mb']:.1f} MB")
        await store.close()
    finally:
        server.stop()
    for previous, row in zip(rows, rows[1:], strict=False):
        growth = row["used_memory_mb"] / previous["used_memory_mb"] - 1.0
        row["growth"] = f"{growth:+.1%}"
        row["target"] = f"< 5%: {'met' if growth < 0.05 else 'MISSED'}"
    return rows


def main(checkpoints: list[int], users: int, items: int, as_json: bool) -> str:
    progress = Progress("memory")
    return report(asyncio.run(run(checkpoints, users, items, progress)), COLUMNS, as_json)
