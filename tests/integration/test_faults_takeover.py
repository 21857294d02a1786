"""A takeover: two workers of one consumer group share the partitions, one is killed
mid-stream, and the survivor takes over its partitions (offset fences keep the effects of
the killed worker's last batches exactly once: docs/architecture.md)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from pipeline.core.keys import Keys
from pipeline.core.settings import Settings
from pipeline.features.registry import AGENT_GROUPS, declared_topics
from pipeline.store.redis import connect
from pipeline.stream.kafka import apply_topics
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

SEED = 90210
ASSIGNED = "Setting newly assigned partitions"


def assignments(path: Path) -> int:
    try:
        return path.read_text(errors="replace").count(ASSIGNED)
    except OSError:
        return 0


async def test_a_survivor_takes_over_a_killed_workers_partitions_exactly(
    isolated: Settings, tmp_path: Path
):
    topics = declared_topics(isolated)
    await apply_topics(isolated.kafka_bootstrap, topics.specs)
    log = build_log(topics, SEED)
    catalog, (early, late) = log.split(topics, 2)
    groups = list(AGENT_GROUPS)
    agents = ",".join(groups)
    total = expected_progress(log, topics, groups)
    reference = run_settings(isolated, "ref", batch_size=500)
    pair = run_settings(isolated, "pair", batch_size=4)
    logs = {name: tmp_path / f"{name}.log" for name in ("reference", "a", "b")}
    store = connect(pair)
    keys = Keys(pair.key_prefix)

    await publish(isolated, catalog)
    workers = {
        "reference": pipeline_process(reference, ["worker", "--agents", agents], logs["reference"]),
        "a": pipeline_process(pair, ["worker", "--agents", agents], logs["a"]),
        "b": pipeline_process(pair, ["worker", "--agents", agents], logs["b"]),
    }
    try:

        async def shared() -> tuple[int, int]:
            return assignments(logs["a"]), assignments(logs["b"])

        # Both members hold partitions: the later joiner's assignment made the other
        # rebalance too (or both joined in one generation).
        try:
            await wait_for(
                shared, lambda n: n[0] >= 1 and n[1] >= 1, 60, "both workers to be assigned"
            )
        except AssertionError:
            print(log_tail(logs["a"]), log_tail(logs["b"]))
            raise
        await wait_catalog([reference, pair], catalog, topics)
        await publish(isolated, early)
        await publish(isolated, late)
        start = await progress(store, keys, groups)
        step = random.Random(SEED).randint(total // 10, total // 5)
        await wait_for(
            lambda: progress(store, keys, groups),
            lambda n: n >= start + step,
            60,
            "the pair to apply part of the late events",
            interval_s=0.02,
        )
        before = assignments(logs["b"])
        workers["a"].kill()
        # The survivor is given the killed worker's partitions once its session times out
        # (the log may be finished before that, when the killed worker had applied its part).
        try:
            await wait_for(
                lambda: _count(logs["b"]),
                lambda n: n > before,
                60,
                "the survivor to be assigned the killed worker's partitions",
            )
        except AssertionError:
            print(log_tail(logs["b"]))
            raise
        await finish(pair, groups, total, "the survivor to finish the log")
        await finish(reference, groups, total, "the reference run")
    finally:
        for worker in workers.values():
            worker.stop()
        await store.close()

    expected = await snapshot(reference)
    check_coverage(expected)
    found = differences(await snapshot(pair), expected)
    assert not found, report(found)


async def _count(path: Path) -> int:
    return assignments(path)
