"""A worker's Prometheus endpoint over the real broker: counts per group and topic, and the
consumer lag of every partition it reads falling to 0 once the log is applied."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import orjson
import pytest

from pipeline.core.settings import Settings
from pipeline.tools.local import free_port
from tests.integration.helpers import log_tail, pipeline_process, produce, wait_for
from tests.integration.test_trending_pipeline import click, setup_topics

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

SAMPLE = re.compile(r"^(\w+)\{([^}]*)\} (\S+)$")


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Samples of metric ``name``: sorted label pairs -> value."""
    found = {}
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match and match.group(1) == name:
            labels = tuple(sorted(re.findall(r'(\w+)="([^"]*)"', match.group(2))))
            found[labels] = float(match.group(3))
    return found


async def test_worker_metrics_count_per_group_and_topic_and_lag_falls_to_zero(
    isolated: Settings, tmp_path: Path
):
    port = free_port()
    # JSON log lines too (PIPELINE_LOG_FORMAT=json).
    settings = isolated.model_copy(update={"worker_metrics_port": port, "log_format": "json"})
    topics = await setup_topics(settings)
    clicks, buys = topics.for_event_type("click"), topics.for_event_type("buy")
    read = {spec.name: spec.partitions for spec in topics.for_agent("trending")}
    assert clicks in read and buys in read

    worker = pipeline_process(settings, ["worker", "--agents", "trending"], tmp_path / "w.log")
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        async with httpx.AsyncClient() as client:

            async def scrape() -> str:
                try:
                    return (await client.get(url)).text
                except httpx.TransportError:
                    return ""

            def lags(text: str) -> dict[tuple[str, int], float]:
                return {
                    (dict(labels)["topic"], int(dict(labels)["partition"])): value
                    for labels, value in samples(text, "pipeline_consumer_lag").items()
                    if dict(labels)["agent"] == "trending"
                }

            every_partition = {(name, p) for name, count in read.items() for p in range(count)}
            # Assigned and fetched: every partition it reads has a lag (0: nothing yet).
            await wait_for(scrape, lambda t: set(lags(t)) == every_partition, 60, "assignment")

            now = int(time.time() * 1000)
            n_clicks, n_buys = 240, 60
            await produce(
                settings,
                clicks,
                [
                    (f"u{n % 17}".encode(), click(n, f"u{n % 17}", "i", now))
                    for n in range(n_clicks)
                ],
            )
            await produce(
                settings,
                buys,
                [
                    (f"u{n}".encode(), click(10_000 + n, f"u{n}", "i", now, "buy"))
                    for n in range(n_buys)
                ],
            )

            def caught_up(text: str) -> bool:
                taken = samples(text, "pipeline_messages_total")
                return (
                    taken.get((("agent", "trending"), ("topic", buys)), 0) == n_buys
                    and taken.get((("agent", "trending"), ("topic", clicks)), 0) == n_clicks
                    and not any(lags(text).values())
                )

            try:
                text = await wait_for(scrape, caught_up, 60, "every message applied, lag 0")
            except AssertionError:
                print(log_tail(tmp_path / "w.log"))
                raise
            applied = samples(text, "pipeline_records_applied_total")
            assert applied[(("agent", "trending"), ("topic", clicks))] == n_clicks
            assert applied[(("agent", "trending"), ("topic", buys))] == n_buys
            assert set(lags(text)) == every_partition
            assert "pipeline_batch_seconds_count" in text
        logged = [
            orjson.loads(line)
            for line in (tmp_path / "w.log").read_text().splitlines()
            if line.startswith("{")
        ]
        assert logged and all(line["service"] == "worker" for line in logged)
        assert {"time", "level", "logger", "message"} <= set(logged[0])
    finally:
        worker.stop()
