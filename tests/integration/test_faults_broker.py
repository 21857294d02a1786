"""The broker stopped and started again on the same port while the collector and a worker
run. The embedded broker keeps everything in memory, so it comes back empty: the topics are
created again (``pipeline topics apply``), and the partitions' offsets start from 0 again.
The collector answers 503 while the broker is away and accepts again once it is back. The
worker reconnects, and finds its offset fences past the new partitions' ends: it says so in
its log (the events up to the old fences are skipped as replays), and after the documented
recovery (stop it, ``pipeline fences reset``, start it in a new consumer group) it applies everything published
after the restart."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from pipeline.core.keys import Keys
from pipeline.core.settings import Settings
from pipeline.features.registry import declared_topics
from pipeline.store.redis import connect
from pipeline.stream.fence import applied_offsets
from pipeline.stream.kafka import apply_topics
from pipeline.tools.fences import reset_fences
from pipeline.tools.local import free_port, start_broker
from tests.integration.helpers import log_tail, pipeline_process, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]


def clicks(tag: str, count: int, now: int) -> list[dict]:
    return [
        {
            "event_id": f"{tag}{n}",
            "type": "click",
            "user_id": f"u{n % 9}",
            "item_id": f"i{n % 4}",
            "timestamp": now + n,
        }
        for n in range(count)
    ]


async def test_collector_and_worker_come_back_with_a_restarted_broker(
    isolated: Settings, tmp_path: Path
):
    port = free_port()
    broker = start_broker(port, log_path=tmp_path / "broker.log")
    settings = isolated.model_copy(
        update={
            "kafka_bootstrap": broker.url,
            "collector_port": free_port(),
            "broker_session_timeout_s": 3.0,
            "broker_rebalance_timeout_s": 3.0,
            "broker_heartbeat_interval_s": 0.5,
        }
    )
    topics = declared_topics(settings)
    await apply_topics(settings.kafka_bootstrap, topics.specs)
    store = connect(settings)
    seen = Keys(settings.key_prefix).seen("trending")
    now = int(time.time() * 1000) - 60_000
    logs = {name: tmp_path / f"{name}.log" for name in ("collector", "worker")}
    collector = pipeline_process(settings, ["collector"], logs["collector"])
    worker = pipeline_process(settings, ["worker", "--agents", "trending"], logs["worker"])
    base = f"http://127.0.0.1:{settings.collector_port}"

    async def applied(ids: list[str]) -> int:
        scores = await store.zmscore(seen, ids)
        return sum(score is not None for score in scores)

    try:
        async with httpx.AsyncClient(base_url=base, timeout=20) as client:

            async def ready() -> int:
                try:
                    return (await client.get("/readyz")).status_code
                except httpx.TransportError:
                    return 0

            async def post(events: list[dict]) -> int:
                return (await client.post("/v1/events", json=events)).status_code

            await wait_for(ready, lambda code: code == 200, 30, "the collector to be ready")
            before = clicks("b", 24, now)
            assert await post(before) == 200
            ids = [e["event_id"] for e in before]
            await wait_for(lambda: applied(ids), lambda n: n == len(ids), 60, "the first clicks")

            broker.stop()
            await wait_for(ready, lambda code: code == 503, 15, "/readyz to answer 503")
            during = clicks("d", 5, now + 1000)
            # Kafka cannot acknowledge: 503, and nothing is reported accepted.
            assert await post(during) == 503

            broker = start_broker(port, log_path=tmp_path / "broker.log")
            await apply_topics(settings.kafka_bootstrap, topics.specs)
            await wait_for(ready, lambda code: code == 200, 30, "/readyz to answer 200 again")
            # The website resends what got 503 until it is accepted (event ids make a
            # replay harmless); the collector's producer may need a moment to find the
            # re-created topics.
            await wait_for(lambda: post(during), lambda code: code == 200, 40, "a 200 again")
            # The new partitions' offsets start below the old fences: the worker must not
            # skip their messages silently.
            clicks_topic = topics.for_event_type("click")
            warning = f"pipeline fences reset --agents trending --topic {clicks_topic}"
            await wait_for(
                lambda: _read(logs["worker"]),
                lambda text: warning in text,
                30,
                "the worker to report its fences past the partitions' ends",
            )
            assert await applied([e["event_id"] for e in during]) == 0
            assert worker.process.poll() is None, log_tail(logs["worker"])
            # The recovery of docs/operations.md: stop, reset the fences, start again.
            worker.stop()
            deleted = await reset_fences(settings, ["trending"], clicks_topic, None)
            assert deleted["trending"], deleted
            # A new consumer group reads the re-created topic from its first offset.
            fresh_group = settings.model_copy(update={"app_id": settings.app_id + "-reset"})
            worker = pipeline_process(
                fresh_group, ["worker", "--agents", "trending"], tmp_path / "worker-2.log"
            )
            after = during + clicks("a", 24, now + 2000)
            assert await post(after[len(during) :]) == 200
            ids = [e["event_id"] for e in after]
            try:
                await wait_for(
                    lambda: applied(ids),
                    lambda n: n == len(ids),
                    30,
                    "every click published after the broker restart to be applied",
                )
            except AssertionError as exc:
                fences = await applied_offsets(store, Keys(settings.key_prefix), "trending")
                raise AssertionError(
                    f"{exc}; of {len(ids)} events only {await applied(ids)} were applied; "
                    f"fences: {fences}\n" + log_tail(tmp_path / "worker-2.log", 10)
                ) from None
            assert worker.process.poll() is None, log_tail(tmp_path / "worker-2.log")
    finally:
        worker.stop()
        collector.stop()
        broker.stop()
        await store.close()


async def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""
