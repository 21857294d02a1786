"""SIGTERM mid-stream stops a worker within seconds, for every mix of agent groups, having
committed exactly what it applied; a stop that cannot finish (Redis frozen) is cut short
and loses nothing (stream/worker.py, stream/app.py)."""

from __future__ import annotations

import asyncio
import math
import os
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import orjson
import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from pipeline.core.events import event_from_dict
from pipeline.core.keys import Keys
from pipeline.core.settings import Settings
from pipeline.core.topics import Topics
from pipeline.features.registry import AGENT_GROUPS, declared_topics, parse_groups
from pipeline.features.trending.config import trending_config
from pipeline.features.trending.model import fold
from pipeline.store.redis import connect
from pipeline.stream.app import consumer_group_id
from pipeline.stream.fence import applied_offsets
from pipeline.stream.kafka import apply_topics, kafka_producer
from pipeline.stream.worker import STOP_TIMEOUT_EXIT_CODE
from pipeline.tools.local import ManagedProcess, free_port, start_redis
from tests.integration.helpers import log_tail, pipeline_process, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

# Well past a clean stop (~2-4 s here), well below "never".
STOP_BOUND_S = 10.0


@asynccontextmanager
async def steady_stream(settings: Settings, topics: Topics) -> AsyncIterator[list[dict]]:
    """Clicks and buys produced at ~500 a second until the block ends; yields the list of
    everything produced (complete, every send acknowledged, once the block has ended)."""
    sent: list[dict] = []
    stop = asyncio.Event()

    async def run() -> None:
        async with kafka_producer(settings) as producer:
            n = 0
            while not stop.is_set():
                pending = []
                for _ in range(25):
                    kind = "buy" if n % 3 == 0 else "click"
                    event = {
                        "event_id": f"e{n}",
                        "type": kind,
                        "user_id": f"u{n % 97}",
                        "item_id": f"i{(n * 7) % 41}",
                        "timestamp": int(time.time() * 1000),
                    }
                    payload = orjson.dumps(event)
                    key = event["user_id"].encode()
                    topic = topics.for_event_type(kind)
                    pending.append(await producer.send(topic, value=payload, key=key))
                    sent.append(event)
                    n += 1
                await asyncio.gather(*pending)
                await asyncio.sleep(0.05)

    task = asyncio.create_task(run())
    try:
        yield sent
    finally:
        stop.set()
        await task


async def applied_count(store, keys: Keys, group: str) -> int:
    return sum(offset + 1 for offset in (await applied_offsets(store, keys, group)).values())


async def committed_offsets(settings: Settings, groups: list[str], topics: Topics) -> dict:
    """``{topic}:{partition}`` -> the consumer group's committed offset (next to read)."""
    partitions = [
        TopicPartition(spec.name, p)
        for spec in topics.specs
        if set(spec.agents) & set(groups)
        for p in range(spec.partitions)
    ]
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        found = await admin.list_consumer_group_offsets(
            consumer_group_id(settings, groups), partitions=partitions
        )
    finally:
        await admin.close()
    return {f"{tp.topic}:{tp.partition}": meta.offset for tp, meta in found.items()}


def worker_ready(log: Path):
    async def probe() -> bool:
        return log.exists() and "[^Worker]: Ready" in log.read_text(errors="replace")

    return probe


async def wait_exit(worker: ManagedProcess, bound_s: float) -> tuple[int | None, float]:
    """Exit code (None: still running after ``bound_s``) and seconds it took."""
    started = time.monotonic()
    while worker.process.poll() is None and time.monotonic() - started < bound_s:
        await asyncio.sleep(0.05)
    return worker.process.poll(), time.monotonic() - started


async def stop_mid_stream(settings: Settings, agents: str, log_dir: Path) -> list[dict]:
    """Start a worker, SIGTERM it while events flow; check it exits 0 within the bound and
    that its group's committed offsets are exactly its fences. Returns the events sent."""
    groups = parse_groups(agents)
    topics = declared_topics(settings)
    await apply_topics(settings.kafka_bootstrap, topics.specs)
    store = connect(settings)
    keys = Keys(settings.key_prefix)
    log = log_dir / f"{agents}.log"
    worker = pipeline_process(settings, ["worker", "--agents", agents], log)
    try:
        try:
            # The stream starts once the worker is up: it has little to catch up with.
            await wait_for(worker_ready(log), bool, 60, f"{agents}: the worker to join")
            async with steady_stream(settings, topics) as sent:
                await wait_for(
                    lambda: applied_count(store, keys, "personal"),
                    lambda n: n >= 300,
                    60,
                    f"{agents}: events applied while they flow",
                )
                worker.process.send_signal(signal.SIGTERM)
                code, took = await wait_exit(worker, STOP_BOUND_S)
        finally:
            worker.kill()
        assert code == 0, f"{agents}: exit {code} after {took:.1f} s\n{log_tail(log)}"
        assert "wait_empty" not in log.read_text()

        # Everything applied is committed, nothing unapplied is: the group resumes exactly
        # where the fences stand.
        committed = await committed_offsets(settings, groups, topics)
        for group in groups:
            fences = await applied_offsets(store, keys, group)
            for slot, offset in fences.items():
                assert committed.get(slot) == offset + 1, (agents, group, slot, committed)
        assert sum(max(o, 0) for o in committed.values()) < len(sent), f"{agents}: too late"
        return sent
    finally:
        await store.close()


async def test_sigterm_mid_stream_stops_within_seconds_and_commits_what_was_applied(
    isolated: Settings, tmp_path: Path
):
    # Every group together, personal with another group (the mix that once never stopped:
    # the log repeated 'wait_empty: Waiting for tasks'), and a group alone; side by side.
    mixes = [",".join(AGENT_GROUPS), "personal,trending", "personal"]
    settings = [
        isolated.model_copy(
            update={
                "topic_prefix": f"{isolated.key_prefix}{n}.",
                "key_prefix": f"{isolated.key_prefix}{n}",
                "app_id": f"{isolated.app_id}{n}",
            }
        )
        for n in range(len(mixes))
    ]
    results = await asyncio.gather(
        *(stop_mid_stream(s, agents, tmp_path) for s, agents in zip(settings, mixes, strict=True))
    )

    # A later worker of the same group finishes the log: counts equal the reference.
    every, sent = settings[0], results[0]
    store = connect(every)
    keys = Keys(every.key_prefix)
    second = pipeline_process(every, ["worker", "--agents", mixes[0]], tmp_path / "second.log")
    try:
        await wait_for(
            lambda: applied_count(store, keys, "trending"),
            lambda n: n == len(sent),
            60,
            "every event applied by the second worker",
        )
        second.stop()
        events = [event_from_dict(e) for e in sent]
        expected = fold(events, trending_config(every), {})
        for key_parts, increments in expected.items():
            stored = {
                item.decode(): score
                for item, score in await store.zrange(keys.trending(*key_parts), 0, -1)
            }
            assert stored.keys() == increments.keys()
            for item_id, amount in increments.items():
                # Summation order differs; a lost or doubled batch would not be close.
                assert math.isclose(stored[item_id], amount, rel_tol=1e-9), key_parts
    finally:
        second.stop()
        await store.close()


async def test_a_stop_that_cannot_finish_is_cut_short_and_loses_nothing(
    isolated: Settings, tmp_path: Path
):
    # A Redis of its own, frozen (SIGSTOP) mid-stream: the batch in hand can be neither
    # applied nor dropped, so only the stop timeout ends the worker.
    redis = start_redis(free_port())
    settings = isolated.model_copy(update={"redis_url": redis.url, "worker_stop_timeout_s": 2.0})
    topics = declared_topics(settings)
    await apply_topics(settings.kafka_bootstrap, topics.specs)
    store = connect(settings)
    keys = Keys(settings.key_prefix)
    log = tmp_path / "worker.log"
    try:
        async with steady_stream(settings, topics) as sent:
            worker = pipeline_process(settings, ["worker", "--agents", "trending"], log)
            try:
                await wait_for(
                    lambda: applied_count(store, keys, "trending"),
                    lambda n: n >= 300,
                    60,
                    "the worker to apply events while they flow",
                )
                os.kill(redis.process.pid, signal.SIGSTOP)
                try:
                    # Events keep coming for a few batch intervals: a batch is in hand, stuck.
                    frozen_at = len(sent)

                    async def produced() -> int:
                        return len(sent) - frozen_at

                    await wait_for(produced, lambda n: n >= 100, 10, "events after the freeze")
                    worker.process.send_signal(signal.SIGTERM)
                    code, took = await wait_exit(worker, STOP_BOUND_S)
                finally:
                    os.kill(redis.process.pid, signal.SIGCONT)
            finally:
                worker.kill()
        assert code == STOP_TIMEOUT_EXIT_CODE, f"exit {code} after {took:.1f} s\n{log_tail(log)}"
        assert "PIPELINE_WORKER_STOP_TIMEOUT_S" in log.read_text()
        committed = await committed_offsets(settings, ["trending"], topics)
        fences = await applied_offsets(store, keys, "trending")
        for slot, offset in committed.items():
            # Nothing acknowledged beyond what was applied (-1001: never committed).
            assert offset <= fences.get(slot, -1) + 1, (slot, committed, fences)
    finally:
        await store.close()
        redis.stop()
