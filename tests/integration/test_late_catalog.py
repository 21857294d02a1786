"""The catalog after the events, through Kafka: a worker running catalog, trending and
segments ends with the same per-category trending and attribute segments for items whose
record came first and for twins (same events, same times) whose record came last."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pipeline.core.keys import Keys
from pipeline.core.settings import Settings
from pipeline.features.registry import declared_topics
from pipeline.store.redis import connect
from pipeline.stream.kafka import apply_topics
from tests.integration.helpers import log_tail, pipeline_process, produce, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]


def catalog(side: str) -> list[dict]:
    return [
        {"item_id": f"{side}-1", "categories": [f"cat-{side}"], "attributes": {"color": side}},
        {"item_id": f"{side}-2", "categories": [f"cat-{side}"], "attributes": {"color": side}},
    ]


def events(side: str, now: int) -> list[dict]:
    steps = [("buy", "u1", 1), ("click", "u1", 2), ("click", "u2", 2), ("basket", "u2", 1)]
    return [
        {
            "event_id": f"{side}{n}",
            "type": kind,
            "user_id": f"{side}-{user}",
            "item_id": f"{side}-{item}",
            "timestamp": now - 10_000 + n * 1000,
        }
        for n, (kind, user, item) in enumerate(steps)
    ]


async def test_trending_and_segments_do_not_depend_on_when_the_catalog_came(
    isolated: Settings, tmp_path: Path
) -> None:
    topics = declared_topics(isolated)
    await apply_topics(isolated.kafka_bootstrap, topics.specs)
    log = tmp_path / "worker.log"
    worker = pipeline_process(isolated, ["worker", "--agents", "catalog,trending,segments"], log)
    store = connect(isolated)
    redis = store.redis
    keys = Keys(isolated.key_prefix)
    now = int(time.time() * 1000)

    async def send_catalog(side: str) -> None:
        items = catalog(side)
        await produce(isolated, topics.catalog.name, [(i["item_id"].encode(), i) for i in items])

    async def send_events(side: str) -> None:
        for kind in ("buy", "click", "basket"):
            chosen = [(e["user_id"].encode(), e) for e in events(side, now) if e["type"] == kind]
            await produce(isolated, topics.for_event_type(kind), chosen)

    async def scores(pattern: str) -> dict[str, dict[str, float]]:
        """Sorted sets matching ``pattern`` with the side's name taken out of keys and
        members, so that the two sides compare."""
        found = {}
        for side in ("first", "last"):
            async for key in redis.scan_iter(match=pattern.format(side=side)):
                name = key.decode().replace(side, "*")
                rows = await redis.zrange(key, 0, -1, withscores=True)
                found[(side, name)] = {m.decode().replace(side, "*"): s for m, s in rows}
        return found

    def sides(found: dict) -> tuple[dict, dict]:
        first = {name: rows for (side, name), rows in found.items() if side == "first"}
        last = {name: rows for (side, name), rows in found.items() if side == "last"}
        return first, last

    try:
        # "first": the catalog, then the events; "last": the events, then the catalog.
        await send_catalog("first")

        async def catalogued() -> int:
            return int(await redis.exists(keys.item("first-1"), keys.item("first-2")))

        await wait_for(catalogued, lambda n: n == 2, 60, "the first catalog")
        await send_events("first")
        await send_events("last")
        item_segments = f"{isolated.key_prefix}:segment:item:{{side}}-*"

        async def applied() -> dict:
            return sides(await scores(item_segments))

        # Each side's four events are in its items' own segments (two users each).
        await wait_for(
            applied,
            lambda s: (
                all(len(rows) == 2 for part in s for rows in part.values())
                and len(s[0]) == len(s[1]) > 0
            ),
            60,
            "the events in the item segments",
        )
        await send_catalog("last")
        by_category = f"{isolated.key_prefix}:trending:*:cat:cat-{{side}}"
        by_color = f"{isolated.key_prefix}:segment:attr:color:{{side}}:*"

        async def moved() -> tuple[dict, dict]:
            trending = sides(await scores(by_category))
            colors = sides(await scores(by_color))
            return {**trending[0], **colors[0]}, {**trending[1], **colors[1]}

        def same(state: tuple[dict, dict]) -> bool:
            first, last = state
            return (
                bool(first)
                and sorted(first) == sorted(last)
                and all(last[name] == pytest.approx(rows, rel=1e-9) for name, rows in first.items())
            )

        first, last = await wait_for(moved, same, 60, "the late catalog's moves")
        assert any(":trending:" in name for name in first)
        assert any(":segment:attr:color:" in name for name in first)
    except AssertionError:
        print(log_tail(log))
        raise
    finally:
        worker.stop()
        await store.close()
