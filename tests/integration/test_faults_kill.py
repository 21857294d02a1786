"""SIGKILL at seeded random points: a worker killed mid-stream again and again, each time
replaced by a new one, ends with exactly the state of an uninterrupted run of the same log
(offset fences and one transaction per batch: docs/architecture.md, "Exactly-once effects")."""

from __future__ import annotations

import asyncio
import random
import re
from pathlib import Path

import pytest

from pipeline.core.keys import Keys
from pipeline.core.settings import Settings
from pipeline.features.registry import AGENT_GROUPS, declared_topics
from pipeline.store.redis import connect
from pipeline.stream.kafka import apply_topics
from pipeline.tools.local import ManagedProcess
from tests.integration.faults import (
    EXCLUDED_VALUES,
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
)
from tests.integration.helpers import log_tail, pipeline_process, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

SEED = 20261203
KILLS = 5
# The subset run is killed fewer times: its restarts compete with the main run's for CPU.
SUBSET_KILLS = 2
# Key families written by the groups of the subset run, and their fences and
# de-duplication entries.
SUBSET = ("catalog", "personal", "trending")
SUBSET_KEYS = re.compile(
    r"(item|items|catalog|trending|user:[^:]+:(history|alias|factors)|foryou|mf|personal"
    r"|related|popularity|(fence|seen):(catalog|personal|trending))(:|$)"
)


async def kill_repeatedly(
    settings: Settings,
    groups: list[str],
    total: int,
    rng: random.Random,
    logs: Path,
    kills: int,
    started: list[ManagedProcess],
) -> None:
    """Start a worker, let it apply a random number of messages, SIGKILL it (after a random
    extra delay, so kills also land inside batches), ``kills`` times; then start the last
    worker. Every worker started is appended to ``started``."""
    store = connect(settings)
    keys = Keys(settings.key_prefix)
    agents = ",".join(groups)
    try:
        for k in range(kills + 1):
            log_path = logs / f"{settings.app_id}-{k}.log"
            worker = pipeline_process(settings, ["worker", "--agents", agents], log_path)
            started.append(worker)
            if k == kills:
                return
            start = await progress(store, keys, groups)
            step = rng.randint(total // 20, total // 8)
            try:
                await wait_for(
                    lambda: progress(store, keys, groups),
                    lambda n, goal=start + step: n >= goal,
                    60,
                    f"worker {k} to apply {step} more messages",
                    interval_s=0.02,
                )
            except AssertionError:
                print(log_tail(log_path))
                raise
            await asyncio.sleep(rng.uniform(0, 0.05))
            worker.kill()
    finally:
        await store.close()


async def test_sigkill_at_random_points_leaves_the_state_of_an_uninterrupted_run(
    isolated: Settings, tmp_path: Path
):
    topics = declared_topics(isolated)
    await apply_topics(isolated.kafka_bootstrap, topics.specs)
    log = build_log(topics, SEED)
    await publish(isolated, log)
    groups = list(AGENT_GROUPS)
    total = expected_progress(log, topics, groups)
    subset_total = expected_progress(log, topics, SUBSET)

    # The reference applies the log uninterrupted, in large batches; the killed runs use
    # small batches, so a kill finds the worker inside a batch more often than not.
    reference = run_settings(isolated, "ref", batch_size=500)
    killed = run_settings(isolated, "all", batch_size=8)
    subset = run_settings(isolated, "sub", batch_size=8)
    rng = random.Random(SEED)
    workers = [
        pipeline_process(
            reference, ["worker", "--agents", ",".join(groups)], tmp_path / "reference.log"
        )
    ]
    try:
        await asyncio.gather(
            kill_repeatedly(killed, groups, total, rng, tmp_path, KILLS, workers),
            kill_repeatedly(
                subset,
                list(SUBSET),
                subset_total,
                random.Random(SEED + 1),
                tmp_path,
                SUBSET_KILLS,
                workers,
            ),
        )
        await asyncio.gather(
            finish(reference, groups, total, "the reference run"),
            finish(killed, groups, total, "the killed run to finish"),
            finish(subset, list(SUBSET), subset_total, "the killed subset run to finish"),
        )
    finally:
        for worker in workers:
            worker.stop()

    expected = await snapshot(reference)
    check_coverage(expected)
    assert EXCLUDED_VALUES  # the exclusions (with reasons) are in tests/integration/faults.py
    found = differences(await snapshot(killed), expected)
    assert not found, report(found)
    state = await snapshot(subset)
    assert {"item", "trending", "related", "user"} <= {key.split(":")[0] for key in state}
    found = differences(state, expected, only=SUBSET_KEYS)
    assert not found, report(found)
