"""Redis faults while events flow: Redis frozen (SIGSTOP, then SIGCONT), and Redis killed and
restarted from its append-only file. The worker waits the outage out with the batch
unacknowledged and ends with exactly the state of an undisturbed run (docs/architecture.md,
"Exactly-once effects")."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from pipeline.core.keys import Keys
from pipeline.core.settings import Settings
from pipeline.features.registry import AGENT_GROUPS, declared_topics
from pipeline.store.redis import connect
from pipeline.stream.kafka import apply_topics
from pipeline.tools.local import ManagedProcess, free_port, redis_binary, spawn, wait_for_port
from tests.integration.faults import (
    build_log,
    check_coverage,
    differences,
    expected_progress,
    finish,
    progress,
    publish,
    report,
    run_settings,
    snapshot,
    wait_catalog,
)
from tests.integration.helpers import log_tail, pipeline_process, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

SEED = 4242
# How long each outage lasts: long enough for several batches to be waiting.
FROZEN_S = 3.0
DOWN_S = 2.0


def start_persistent_redis(port: int, directory: Path, log_path: Path) -> ManagedProcess:
    """A redis-server with an append-only file in ``directory`` (fsync every second, the
    default: a killed process loses nothing, only a machine crash can lose the last second)."""
    managed = spawn(
        "redis",
        [
            redis_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(directory),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
        ],
        log_path,
    )
    wait_for_port("127.0.0.1", port, 15.0, managed.process)
    managed.url = f"redis://127.0.0.1:{port}/0"
    return managed


async def test_redis_frozen_and_restarted_from_its_aof_loses_and_doubles_nothing(
    isolated: Settings, tmp_path: Path
):
    topics = declared_topics(isolated)
    await apply_topics(isolated.kafka_bootstrap, topics.specs)
    log = build_log(topics, SEED)
    catalog, parts = log.split(topics, 3)
    groups = list(AGENT_GROUPS)
    agents = ",".join(groups)
    total = expected_progress(log, topics, groups)
    port = free_port()
    data = tmp_path / "redis"
    data.mkdir()
    redis = start_persistent_redis(port, data, tmp_path / "redis.log")
    reference = run_settings(isolated, "ref", batch_size=500)
    faulty = run_settings(isolated, "redis", batch_size=8, redis_url=redis.url)
    keys = Keys(faulty.key_prefix)
    worker_log = tmp_path / "worker.log"
    workers = []
    try:
        await publish(isolated, catalog)
        workers = [
            pipeline_process(reference, ["worker", "--agents", agents], tmp_path / "ref.log"),
            pipeline_process(faulty, ["worker", "--agents", agents], worker_log),
        ]
        await wait_catalog([reference, faulty], catalog, topics)
        await publish(isolated, parts[0])
        store = connect(faulty)
        try:
            await wait_for(
                lambda: progress(store, keys, groups), lambda n: n > 0, 60, "first batches"
            )
        finally:
            await store.close()

        # Frozen: connections stay open, commands wait in the socket buffers.
        os.kill(redis.process.pid, signal.SIGSTOP)
        try:
            await publish(isolated, parts[1])
            await asyncio.sleep(FROZEN_S)
        finally:
            os.kill(redis.process.pid, signal.SIGCONT)

        # Killed and restarted on the same port from its append-only file.
        redis.kill()
        await publish(isolated, parts[2])
        await asyncio.sleep(DOWN_S)
        redis = start_persistent_redis(port, data, tmp_path / "redis.log")

        await finish(faulty, groups, total, "the worker to finish after the outages")
        await finish(reference, groups, total, "the reference run")
        assert workers[1].process.poll() is None, log_tail(worker_log)
        # The worker did meet the outage (and retried) rather than finishing before it.
        assert "retrying" in worker_log.read_text(errors="replace"), log_tail(worker_log)
    finally:
        for worker in workers:
            worker.stop()
        try:
            expected = await snapshot(reference)
            actual = await snapshot(faulty)
        finally:
            redis.stop()
    check_coverage(expected)
    found = differences(actual, expected)
    assert not found, report(found)
