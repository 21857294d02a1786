"""Events produced to Kafka become trending lists, exactly once, even across a SIGKILL."""

from __future__ import annotations

import math
import time
from pathlib import Path

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from pipeline.api.reader import create_reader_app
from pipeline.core.events import Event, event_from_dict
from pipeline.core.keys import Keys
from pipeline.core.settings import Settings
from pipeline.features.registry import declared_topics
from pipeline.features.trending.config import trending_config
from pipeline.features.trending.model import fold
from pipeline.store.base import Store
from pipeline.store.redis import connect
from pipeline.stream.fence import applied_offsets
from pipeline.stream.kafka import apply_topics
from pipeline.tools.local import free_port
from tests.integration.helpers import log_tail, pipeline_process, produce, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]


def click(n: int, user: str, item: str, ts: int, kind: str = "click") -> dict:
    return {"event_id": f"e{n}", "type": kind, "user_id": user, "item_id": item, "timestamp": ts}


async def setup_topics(settings: Settings):
    topics = declared_topics(settings)
    await apply_topics(settings.kafka_bootstrap, topics.specs)
    return topics


async def trending_scores(
    store: Store, keys: Keys, events: list[Event], settings: Settings
) -> dict:
    """Every trending key this batch of events touches, read back from Redis."""
    expected = fold(events, trending_config(settings), {})
    out = {}
    for kind, window, gen, category in expected:
        key = keys.trending(kind, window, gen, category)
        out[key] = {k.decode(): v for k, v in await store.zrange(key, 0, -1)}
    return out


async def test_clicks_show_up_in_trending_with_expected_ranking(isolated: Settings, tmp_path: Path):
    topics = await setup_topics(isolated)
    now = int(time.time() * 1000)
    await produce(
        isolated,
        topics.catalog.name,
        [
            (
                f"item-{i}".encode(),
                {"item_id": f"item-{i}", "categories": ["shoes" if i < 2 else "hats"]},
            )
            for i in range(4)
        ],
    )
    # item-2 gets 30 clicks, item-0 20, item-1 10, item-3 none.
    events = [
        click(n, f"u{n % 5}", item, now)
        for n, item in enumerate(["item-2"] * 30 + ["item-0"] * 20 + ["item-1"] * 10)
    ]
    # A client retry sends the first five clicks again: same event ids, new offsets.
    resent = events + events[:5]
    await produce(
        isolated, topics.for_event_type("click"), [(e["user_id"].encode(), e) for e in resent]
    )

    worker = pipeline_process(
        isolated, ["worker", "--agents", "catalog,trending"], tmp_path / "worker.log"
    )
    app = create_reader_app(isolated)
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://reader"
            ) as client,
        ):

            async def ranking() -> list:
                response = await client.get(
                    "/v1/trending", params={"kind": "clicks", "window": "1h", "n": 10}
                )
                assert response.status_code == 200, response.text
                return response.json()["items"]

            try:
                items = await wait_for(
                    ranking,
                    lambda items: len(items) == 3 and items[-1]["score"] > 9.9,
                    60,
                    "three trending items",
                )
            except AssertionError:
                print(log_tail(tmp_path / "worker.log"))
                raise
            assert [item["item_id"] for item in items] == ["item-2", "item-0", "item-1"]
            # Scores are decayed counts: fresh clicks of weight 1 read back as their number,
            # and the resent duplicates count once.
            assert [round(item["score"]) for item in items] == [30, 20, 10]

            # Per category: shoes holds item-0 and item-1 only (needs the catalog first).
            response = await client.get(
                "/v1/trending", params={"kind": "clicks", "window": "1d", "category": "shoes"}
            )
            assert [item["item_id"] for item in response.json()["items"]] == ["item-0", "item-1"]
    finally:
        worker.stop()


async def test_bad_messages_go_to_dead_letter_and_change_nothing(
    isolated: Settings, tmp_path: Path
):
    metrics_port = free_port()
    isolated = isolated.model_copy(update={"worker_metrics_port": metrics_port})
    topics = await setup_topics(isolated)
    now = int(time.time() * 1000)
    good = click(1, "alice", "book", now)
    bad = [
        b"not json at all",
        b"\xff\xfe\x00binary",
        orjson.dumps({**good, "event_id": "e2", "user_id": "has space"}),
        orjson.dumps({**good, "event_id": "e3", "timestamp": "yesterday"}),
        orjson.dumps([{**good, "event_id": "e4", "type": "teleport"}]),
    ]
    clicks = topics.for_event_type("click")
    await produce(isolated, clicks, [(b"alice", value) for value in bad] + [(b"alice", good)])

    worker = pipeline_process(isolated, ["worker", "--agents", "trending"], tmp_path / "worker.log")
    store = connect(isolated)
    keys = Keys(isolated.key_prefix)
    consumer = AIOKafkaConsumer(
        topics.dead_letter.name,
        bootstrap_servers=isolated.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    try:
        received: list[dict] = []

        async def drain() -> list[dict]:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                received.extend(orjson.loads(record.value) for record in records)
            return received

        await wait_for(drain, lambda r: len(r) >= len(bad), 60, "dead letters")
        assert len(received) == len(bad)
        assert {r["topic"] for r in received} == {clicks}
        assert sorted(r["offset"] for r in received) == list(range(len(bad)))
        assert all(r["reason"] and r["agent"] == "trending" for r in received)
        by_offset = {r["offset"]: r for r in received}
        assert "not valid JSON" in by_offset[0]["reason"]
        assert by_offset[0]["value"] == "not json at all"
        assert "value_base64" in by_offset[1]
        assert "user_id" in by_offset[2]["reason"]
        assert "timestamp" in by_offset[3]["reason"]
        assert by_offset[4]["index"] == 0 and "type" in by_offset[4]["reason"]

        # The one good event is applied; the bad ones touched no key but the fence (and
        # the good event's id joined the de-duplication window).
        # All messages share a key, hence one partition: its fence ends at the good one.
        fences = await wait_for(
            lambda: applied_offsets(store, keys, "trending"),
            lambda f: list(f.values()) == [len(bad)],
            30,
            "fence at the last offset",
        )
        (partition,) = [int(field.rsplit(":", 1)[1]) for field in fences]
        written = sorted(await store.scan(keys.pattern()))
        expected = await trending_scores(store, keys, [event_from_dict(good)], isolated)
        fence = keys.fence("trending", clicks, partition)
        assert written == sorted([*expected, fence, keys.seen("trending")])
        assert [m.decode() for m, _ in await store.zrange(keys.seen("trending"), 0, -1)] == ["e1"]
        assert all(set(members) == {"book"} for members in expected.values())

        # The worker counts what it rejected and applied on its Prometheus endpoint.
        async with httpx.AsyncClient() as client:
            text = (await client.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
        labels = f'{{agent="trending",topic="{clicks}"}}'
        assert f"pipeline_records_rejected_total{labels} 5.0" in text
        assert f"pipeline_records_applied_total{labels} 1.0" in text
    finally:
        await consumer.stop()
        await store.close()
        worker.stop()


async def test_sigkill_mid_stream_then_restart_counts_exactly_once(
    isolated: Settings, tmp_path: Path
):
    settings = isolated.model_copy(update={"batch_size": 100})
    topics = await setup_topics(settings)
    now = int(time.time() * 1000)
    raw = [
        click(
            n,
            f"user-{n % 50}",
            f"item-{(n * 7) % 40}",
            now - (n % 600) * 1000,
            "click" if n % 3 else "buy",
        )
        for n in range(20_000)
    ]
    for event in raw:
        if event["type"] == "buy":
            event["event_id"] = f"b{event['event_id']}"
    events = [event_from_dict(e) for e in raw]
    await produce(
        settings,
        topics.for_event_type("click"),
        [(e["user_id"].encode(), e) for e in raw if e["type"] == "click"],
    )
    await produce(
        settings,
        topics.for_event_type("buy"),
        [(e["user_id"].encode(), e) for e in raw if e["type"] == "buy"],
    )

    store = connect(settings)
    keys = Keys(settings.key_prefix)

    async def applied() -> int:
        # Fences hold the last applied offset per partition; +1 each gives messages done.
        fences = await applied_offsets(store, keys, "trending")
        return sum(offset + 1 for offset in fences.values())

    first = pipeline_process(settings, ["worker", "--agents", "trending"], tmp_path / "first.log")
    try:
        done = await wait_for(applied, lambda n: n > 0, 60, "a first batch")
    finally:
        first.kill()
    assert done < len(raw), "the worker finished before it could be killed mid-stream"

    second = pipeline_process(settings, ["worker", "--agents", "trending"], tmp_path / "second.log")
    try:
        await wait_for(applied, lambda n: n == len(raw), 90, "every event applied after restart")
    except AssertionError:
        print(log_tail(tmp_path / "second.log"))
        raise
    finally:
        second.stop()

    expected = fold(events, trending_config(settings), {})
    actual = await trending_scores(store, keys, events, settings)
    await store.close()
    assert set(actual) == {keys.trending(*key) for key in expected}
    for key_parts, increments in expected.items():
        stored = actual[keys.trending(*key_parts)]
        assert stored.keys() == increments.keys()
        for item_id, amount in increments.items():
            # Summation order differs between runs; a lost or doubled batch would not be close.
            assert math.isclose(stored[item_id], amount, rel_tol=1e-9), (key_parts, item_id)


async def test_topics_apply_twice_is_a_no_op_and_reports_differences(isolated: Settings):
    topics = declared_topics(isolated)
    created, differences = await apply_topics(isolated.kafka_bootstrap, topics.specs)
    assert sorted(created) == sorted(spec.name for spec in topics.specs)
    assert differences == []
    created, differences = await apply_topics(isolated.kafka_bootstrap, topics.specs)
    assert created == [] and differences == []

    changed = [
        spec.__class__(**{**{f: getattr(spec, f) for f in spec.__slots__}, "partitions": 8})
        if spec.name == topics.dead_letter.name
        else spec
        for spec in topics.specs
    ]
    created, differences = await apply_topics(isolated.kafka_bootstrap, changed)
    assert created == []
    assert [(d.topic, d.setting, d.declared, d.actual) for d in differences] == [
        (topics.dead_letter.name, "partitions", "8", "1")
    ]
