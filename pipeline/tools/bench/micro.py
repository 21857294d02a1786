"""``pipeline bench micro``: the in-process paths, each against a baseline on the same events
in the same process (events per second of both, so the ratio means something on a noisy
machine): decoding, validating, learning, writing to Redis, agent batches, the click model."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson

from pipeline.core.decay import expire_at_s
from pipeline.core.events import Event, event_from_dict, parse_message
from pipeline.core.keys import Keys
from pipeline.core.settings import load_settings
from pipeline.features.personal.config import personal_config
from pipeline.features.personal.engine import Engine
from pipeline.features.trending.config import trending_config
from pipeline.features.trending.model import fold
from pipeline.store.base import Writes
from pipeline.store.redis import connect
from pipeline.tools.bench.common import report
from pipeline.tools.local import free_port, start_redis
from pipeline.tools.synthetic import SyntheticConfig, SyntheticWorld


def synthetic_events(n: int, seed: int = 3) -> list[Event]:
    return [event_from_dict(raw) for raw in SyntheticWorld(SyntheticConfig(seed=seed)).events(n)]


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def _timed(function: Callable[[], Any]) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def bench_parse(events: list[Event]) -> dict[str, Any]:
    """Batch envelopes of 100 events vs one message per event (both fully validated)."""
    singles = [event.to_json() for event in events]
    envelopes = [b"[" + b",".join(singles[i : i + 100]) + b"]" for i in range(0, len(singles), 100)]
    ours = _timed(lambda: [parse_message(raw) for raw in envelopes])
    baseline = _timed(lambda: [parse_message(raw) for raw in singles])
    return {
        "name": "parse (envelopes of 100)",
        "ours": _rate(len(events), ours),
        "baseline": _rate(len(events), baseline),
        "baseline_name": "one event per message",
    }


def bench_learn(events: list[Event]) -> dict[str, Any]:
    """The whole engine (factors, co-occurrence, history) vs River's FunkMF doing only the
    factor updates of the same events: the positive, its sampled negatives, and each shown
    item of an impression as a weak negative."""
    from river import optim, reco

    settings = load_settings()
    engine = Engine(personal_config(settings))

    def learn_all() -> None:
        for event in events:
            engine.learn(event)

    ours = _timed(learn_all)
    negatives = engine.config.mf.negatives
    item_ids = sorted({e.item_id for e in events if e.item_id})
    observations: list[tuple[str, str, float]] = []
    for index, event in enumerate(events):
        if event.event_type == "impression":
            observations += [(event.user_id, item, 0.0) for item in event.items]
        elif event.item_id and event.event_type not in {"login", "blacklist"}:
            observations.append((event.user_id, event.item_id, 1.0))
            observations += [
                (event.user_id, item_ids[(index * 7 + j) % len(item_ids)], 0.0)
                for j in range(negatives)
            ]
    river = reco.FunkMF(
        n_factors=settings.mf_factors, optimizer=optim.SGD(settings.mf_learning_rate), seed=1
    )
    baseline = _timed(lambda: [river.learn_one(user, item, y) for user, item, y in observations])
    return {
        "name": "learn (all personal models)",
        "ours": _rate(len(events), ours),
        "baseline": _rate(len(events), baseline),
        "baseline_name": "river FunkMF, the same factor updates only",
    }


async def bench_redis_writes(events: list[Event], redis_url: str) -> dict[str, Any]:
    """Trending: a batch folded into per-key deltas and written in one transaction, vs one
    awaited ZINCRBY per event and key (the naive agent)."""
    settings = load_settings(redis_url=redis_url, key_prefix="bench")
    config = trending_config(settings)
    keys = Keys("bench")
    store = connect(settings)
    redis = store.redis
    try:
        started = time.perf_counter()
        for start in range(0, len(events), 1000):
            deltas = fold(events[start : start + 1000], config, {})
            writes = Writes()
            for (kind, window, gen, category), increments in deltas.items():
                writes.zincr_trim(
                    keys.trending(kind, window, gen, category),
                    increments,
                    settings.trending_max_items,
                    expire_at_s=expire_at_s(gen, config.windows[window]),
                )
            await store.apply(writes)
        ours = time.perf_counter() - started
        naive = events[: max(1, len(events) // 10)]
        started = time.perf_counter()
        for event in naive:
            for (kind, window, gen, category), increments in fold([event], config, {}).items():
                for item_id, amount in increments.items():
                    await redis.zincrby(
                        keys.trending(kind, window, gen, category) + ":naive", amount, item_id
                    )
        baseline = time.perf_counter() - started
    finally:
        await redis.flushdb()
        await store.close()
    return {
        "name": "trending writes to Redis",
        "ours": _rate(len(events), ours),
        "baseline": _rate(len(naive), baseline),
        "baseline_name": "one awaited ZINCRBY per update",
    }


def bench_parse_json_only(events: list[Event]) -> dict[str, Any]:
    """orjson vs the standard library json on the same messages (decode only)."""
    import json

    singles = [event.to_json() for event in events]
    ours = _timed(lambda: [orjson.loads(raw) for raw in singles])
    baseline = _timed(lambda: [json.loads(raw) for raw in singles])
    return {
        "name": "decode JSON",
        "ours": _rate(len(events), ours),
        "baseline": _rate(len(events), baseline),
        "baseline_name": "stdlib json.loads",
    }


async def _apply_in_batches(
    redis_url: str,
    prefix: str,
    make_lanes: Callable[[Any, Keys], list[Any]],
    topic_of: Callable[[Event], str],
    chosen: list[Event],
    batch: int,
) -> float:
    """Seconds to apply ``chosen`` as one-event messages (on ``topic_of`` each) in batches of
    ``batch``, through the lanes ``make_lanes`` builds and their phases, as a worker does."""
    from pipeline.stream.app import phases_of
    from pipeline.stream.batch import RawMessage, process_lanes
    from pipeline.stream.fence import Position

    settings = load_settings(redis_url=redis_url, key_prefix=prefix)
    keys = Keys(prefix)
    lanes = make_lanes(settings, keys)
    for lane in lanes:
        # As a lone worker: it holds every partition of its topics.
        lane.handler.owns_every_partition(True)
    phases = phases_of(lanes)
    messages = [
        RawMessage(Position(topic_of(e), 0, i), e.user_id.encode(), e.to_json())
        for i, e in enumerate(chosen)
    ]
    store = connect(settings)

    async def no_dead_letters(_: list) -> None:
        raise AssertionError("benchmark events are valid")

    try:
        started = time.perf_counter()
        for start in range(0, len(messages), batch):
            for phase in phases:
                await process_lanes(
                    store,
                    keys,
                    phase,
                    messages[start : start + batch],
                    no_dead_letters,
                    settings.dedup_window_s * 1000,
                    settings.dedup_max_ids,
                )
        return time.perf_counter() - started
    finally:
        await store.close()


async def _batches_row(
    name: str,
    redis_url: str,
    prefix: str,
    make_lanes: Callable[[Any, Keys], list[Any]],
    topic_of: Callable[[Event], str],
    events: list[Event],
    batch: int,
    share: int,
) -> dict[str, Any]:
    """``events`` in batches of ``batch`` against the first ``1 / share`` of them in batches
    of one message (a per-message agent), each on its own key prefix."""
    ours = await _apply_in_batches(redis_url, prefix, make_lanes, topic_of, events, batch)
    few = events[: max(1, len(events) // share)]
    baseline = await _apply_in_batches(redis_url, f"{prefix}-1", make_lanes, topic_of, few, 1)
    return {
        "name": name,
        "ours": _rate(len(events), ours),
        "baseline": _rate(len(few), baseline),
        "baseline_name": "batches of one message",
    }


async def bench_personal_agent(events: list[Event], redis_url: str) -> dict[str, Any]:
    """The personal agent's batch path (fence, dedup, learn, for-you lists, one transaction)
    with batches of 1000 vs batches of 1 (a per-message agent), on the same events."""
    from pipeline.features.personal.agent import PersonalHandler
    from pipeline.stream.batch import Lane

    def personal(settings: Any, keys: Keys) -> list[Any]:
        return [Lane(PersonalHandler(settings, keys))]

    def topic_of(_: Event) -> str:
        return "bench"

    return await _batches_row(
        "personal agent batches", redis_url, "bench-personal", personal, topic_of, events, 1000, 10
    )


async def bench_default_worker(events: list[Event], redis_url: str) -> dict[str, Any]:
    """Every agent group's batch path as one worker applies it (one decode per message,
    every lane's plan, one transaction per phase), one event per message, batches of 500
    (what a worker behind a backlog takes) vs batches of one message: the worker's per-event
    cost without Kafka and Faust, which ``bench ingest`` adds."""
    from pipeline.features.registry import AGENT_GROUPS, declared_topics
    from pipeline.stream.app import make_lanes

    topics = declared_topics(load_settings())

    def every_group(settings: Any, keys: Keys) -> list[Any]:
        return make_lanes(settings, keys, list(AGENT_GROUPS), topics)

    def topic_of(event: Event) -> str:
        return topics.for_event_type(event.event_type)

    return await _batches_row(
        "default worker batches", redis_url, "bench-default", every_group, topic_of, events, 500, 20
    )


def bench_ranking(events: list[Event]) -> dict[str, Any]:
    """The click model as the ranking agent learns a batch (indexes without names, the SGD
    loop inlined) vs the readable path (feature names hashed, ``learn_indexes`` per step)."""
    import numpy as np

    from pipeline.features.ranking.config import ranking_config
    from pipeline.features.ranking.features import observations
    from pipeline.features.ranking.model import StepBatch

    config = ranking_config(load_settings())
    categories: dict[str, list[str]] = {}
    fast = config.model()
    indexer = fast.indexer()

    def ours() -> None:
        indexed = indexer.batch(events, categories, config.impression_weight, config.click_weight)
        batch = StepBatch.of_indexed(indexed)
        fast.learn_batch(batch, np.zeros(len(batch.present)), np.zeros(len(batch.present)))

    slow = config.model()

    def readable() -> None:
        for event in events:
            for names, clicked, weight in observations(
                event, categories, config.impression_weight, config.click_weight
            ):
                slow.learn_indexes(slow.indexes(names), clicked, weight)

    return {
        "name": "click model, a batch",
        "ours": _rate(len(events), _timed(ours)),
        "baseline": _rate(len(events), _timed(readable)),
        "baseline_name": "feature names hashed, learn_indexes per observation",
    }


async def run_all(n: int, redis_url: str | None = None) -> list[dict[str, Any]]:
    events = synthetic_events(n)
    rows = [
        bench_parse_json_only(events),
        bench_parse(events),
        bench_learn(events),
        bench_ranking(events),
    ]
    server = start_redis(free_port()) if redis_url is None else None
    url = server.url if server is not None else str(redis_url)
    try:
        rows.append(await bench_redis_writes(events, url))
        rows.append(await bench_personal_agent(events, url))
        rows.append(await bench_default_worker(events, url))
    finally:
        if server is not None:
            server.stop()
    return rows


COLUMNS = [
    ("name", "benchmark"),
    ("ours", "ours ev/s"),
    ("baseline", "baseline ev/s"),
    ("ratio", "ratio"),
    ("baseline_name", "baseline"),
]


def main(events: int, as_json: bool) -> str:
    import asyncio

    rows = asyncio.run(run_all(events))
    for row in rows:
        row["ratio"] = row["ours"] / row["baseline"] if row["baseline"] else 0.0
    return report(rows, COLUMNS, as_json)
