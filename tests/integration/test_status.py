"""``pipeline status`` on a small pipeline: applied and end offsets per group and partition,
lag, Redis key families, and the dead letters of the last hour."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from pipeline.core.settings import Settings
from pipeline.tools.status import collect_status
from tests.integration.helpers import log_tail, pipeline_process, produce, wait_for
from tests.integration.test_cli import run_cli
from tests.integration.test_trending_pipeline import click, setup_topics

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]


async def test_status_reports_offsets_lag_keys_and_dead_letters(isolated: Settings, tmp_path: Path):
    topics = await setup_topics(isolated)
    clicks = topics.for_event_type("click")
    now = int(time.time() * 1000)
    good = [(f"u{n}".encode(), click(n, f"u{n}", f"i{n % 3}", now)) for n in range(30)]
    await produce(isolated, clicks, [*good, (b"u0", b"not json")])

    before = await collect_status(isolated, topics, ["trending"])
    assert not before.errors
    rows = {(p.topic, p.partition): p for p in before.partitions if p.topic == clicks}
    assert all(p.applied is None for p in rows.values())
    assert sum(p.lag or 0 for p in rows.values()) == len(good) + 1

    worker = pipeline_process(isolated, ["worker", "--agents", "trending"], tmp_path / "w.log")
    try:

        async def lag_left() -> int:
            found = await collect_status(isolated, topics, ["trending"])
            return sum(p.lag or 0 for p in found.partitions)

        try:
            await wait_for(lag_left, lambda lag: lag == 0, 60, "trending caught up")
        except AssertionError:
            print(log_tail(tmp_path / "w.log"))
            raise
    finally:
        worker.stop()

    result = run_cli(isolated, "status", "--agents", "trending", "--json")
    assert result.returncode == 0, result.stderr
    body = orjson.loads(result.stdout)
    partitions = [p for p in body["partitions"] if p["topic"] == clicks]
    assert sum(p["end"] for p in partitions) == len(good) + 1
    for p in partitions:
        assert p["group"] == "trending" and p["lag"] == 0
        assert p["applied"] == (p["end"] - 1 if p["end"] else None)
    assert body["dead_letters_last_hour"] == 1
    assert body["redis_used_memory"] > 0
    assert body["keys"]["trending"] > 0 and body["keys"]["fence"] == len(
        [p for p in body["partitions"] if p["end"]]
    )
    assert body["keys_scanned"] == sum(body["keys"].values())
    table = run_cli(isolated, "status", "--agents", "trending")
    assert table.returncode == 0, table.stderr
    assert clicks in table.stdout and "dead letters in the last hour: 1" in table.stdout
