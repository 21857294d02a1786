"""A batch that fails for a reason waiting cannot cure stops the worker unacknowledged:
nothing is lost, and a corrected restart applies it (stream/batch.py, stream/app.py)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pipeline.core.keys import Keys
from pipeline.core.settings import Settings
from pipeline.features.registry import declared_topics
from pipeline.store.redis import connect
from pipeline.stream.fence import applied_offsets
from pipeline.stream.kafka import apply_topics
from tests.integration.helpers import log_tail, pipeline_process, produce, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]


def clicks(start: int, count: int, now: int) -> list[tuple[bytes, dict]]:
    events = [
        {
            "event_id": f"f{n}",
            "type": "click",
            "user_id": f"u{n % 5}",
            "item_id": f"i{n % 7}",
            "timestamp": now + n,
        }
        for n in range(start, start + count)
    ]
    return [(e["user_id"].encode(), e) for e in events]


async def test_a_fatal_batch_error_stops_the_worker_and_loses_nothing(
    isolated: Settings, tmp_path: Path
):
    topics = declared_topics(isolated)
    await apply_topics(isolated.kafka_bootstrap, topics.specs)
    topic = topics.for_event_type("click")
    now = int(time.time() * 1000)
    store = connect(isolated)
    keys = Keys(isolated.key_prefix)

    async def applied() -> int:
        return sum(
            offset + 1 for offset in (await applied_offsets(store, keys, "personal")).values()
        )

    try:
        await produce(isolated, topic, clicks(0, 50, now))
        first = pipeline_process(
            isolated, ["worker", "--agents", "personal"], tmp_path / "first.log"
        )
        try:
            await wait_for(applied, lambda n: n == 50, 60, "the first 50 events")
        finally:
            first.stop()

        # Restarted with a different factor count, the stored vectors no longer fit: the
        # worker must stop with a clear message, not skip the batch.
        await produce(isolated, topic, clicks(50, 20, now))
        wrong = isolated.model_copy(update={"mf_factors": 16})
        broken = pipeline_process(
            wrong, ["worker", "--agents", "personal"], tmp_path / "broken.log"
        )
        try:
            code = await wait_for(
                lambda: _returncode(broken.process),
                lambda c: c is not None,
                60,
                "the worker to stop",
            )
        finally:
            broken.stop()
        assert code == 70, log_tail(tmp_path / "broken.log")
        assert "PIPELINE_MF_FACTORS" in (tmp_path / "broken.log").read_text()
        assert await applied() == 50

        fixed = pipeline_process(
            isolated, ["worker", "--agents", "personal"], tmp_path / "fixed.log"
        )
        try:
            await wait_for(applied, lambda n: n == 70, 60, "the 20 held-back events")
        finally:
            fixed.stop()
        history = await store.get(keys.user_history("u0"))
        assert history is not None and b'"i0"' in history
    finally:
        await store.close()


async def _returncode(process) -> int | None:
    return process.poll()
