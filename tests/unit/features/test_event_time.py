"""Event time, not arrival order: one log applied through the handlers' plans in different
orders (timestamp order, topic by topic, different batch sizes) leaves the same store.

Clicks and conversions travel on different topics, so a worker may read all clicks before
any conversion or the reverse. What is compared, and how:

- counters (related-item counts, popularity, histories, trending, cold-start popularity,
  segments) must be equal; sums of forward-decayed floats only up to the rounding of
  adding the same numbers in another order (relative 1e-9);
- learned models are left out: the factor model (user and item factors, the for-you lists
  computed from them) and the ranking click model take one stochastic step per event or
  batch, and such steps do not commute. They see the same events, not the same sequence.
"""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest

from pipeline.features.personal.agent import PersonalHandler
from pipeline.features.segments.agent import SegmentsHandler
from pipeline.features.trending.agent import TrendingHandler
from pipeline.store.memory import MemoryStore
from pipeline.stream.handler import Handler
from tests.unit.features.helpers import KEYS, T0_MS, run, settings, store_at

pytestmark = pytest.mark.asyncio

MINUTE = 60_000
CONVERSIONS = ("buy", "basket", "consume", "rate")
# Learned models (see the module docstring) and the for-you work queue.
LEARNED = (":factors", ":foryou:", ":mf:items", ":mf:words")


def event_log(seed: int = 3, users: int = 5, per_user: int = 24) -> list[dict[str, Any]]:
    """Clicks and conversions of a few users on a few items, minutes to hours apart, so
    that every relation's window both joins and separates events; some at equal times."""
    rng = random.Random(seed)
    log = []
    for u in range(users):
        t = T0_MS + rng.randrange(0, 30) * MINUTE
        for n in range(per_user):
            t += rng.choice([0, 1, 5, 20, 45, 90, 200, 2000]) * MINUTE
            kind = "click" if rng.random() < 0.6 else rng.choice(CONVERSIONS)
            body = {
                "event_id": f"u{u}-{n}",
                "type": kind,
                "user_id": f"u{u}",
                "item_id": f"i{rng.randrange(8)}",
                "timestamp": t,
            }
            if kind == "consume":
                body["value"] = 0.5
            elif kind == "rate":
                # Ratings from 4 up are conversions, lower ones are not.
                body["value"] = rng.choice([2, 5])
            log.append(body)
    return log


def orders(log: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    in_time = sorted(log, key=lambda e: e["timestamp"])
    clicks = [e for e in in_time if e["type"] == "click"]
    others = [e for e in in_time if e["type"] != "click"]
    shuffled = list(log)
    random.Random(11).shuffle(shuffled)
    return {
        "timestamp order": in_time,
        "clicks, then conversions": clicks + others,
        "conversions, then clicks": others + clicks,
        "newest first": in_time[::-1],
        "shuffled": shuffled,
    }


async def apply(log: list[dict[str, Any]], batch_size: int, **overrides: Any) -> MemoryStore:
    store = store_at(T0_MS)
    config = settings(**overrides)
    handlers: list[Handler[Any]] = [
        PersonalHandler(config, KEYS),
        TrendingHandler(config, KEYS),
        SegmentsHandler(config, KEYS),
    ]
    for start in range(0, len(log), batch_size):
        for handler in handlers:
            await run(handler, store, log[start : start + batch_size])
    return store


def state(store: MemoryStore) -> dict[str, Any]:
    """Every key but the learned models', as plain comparable values."""
    found: dict[str, Any] = {}
    for key, value in store._data.items():
        if any(part in key for part in LEARNED):
            continue
        if isinstance(value, bytes):
            found[key] = orjson.loads(value) if key.endswith(":history") else value
        elif isinstance(value, dict):
            found[key] = {member: number(score) for member, score in value.items()}
        else:
            found[key] = set(value)
    return found


def number(value: Any) -> Any:
    """A score or a counter in a hash as a float; other hash fields as they are."""
    try:
        return float(value)
    except ValueError:
        return value


def assert_same(expected: dict[str, Any], actual: dict[str, Any], order: str) -> None:
    assert sorted(actual) == sorted(expected), order
    for key, value in expected.items():
        if key.endswith(":history"):
            # Exclusions are a dict whose insertion order is arrival order.
            assert actual[key] == value, (order, key)
        elif isinstance(value, dict):
            assert actual[key] == pytest.approx(value, rel=1e-9), (order, key)
        else:
            assert actual[key] == value, (order, key)


@pytest.mark.parametrize("batch_size", [1, 9, 1000])
async def test_the_same_events_in_any_order_leave_the_same_counters(batch_size: int) -> None:
    log = event_log()
    expected = state(await apply(orders(log)["timestamp order"], 1000))
    related = [key for key in expected if ":related:" in key and not key.endswith("anchors")]
    # The log exercises every relation (the comparison would be empty otherwise).
    for relation in ("also_clicked", "also_bought", "viewed_then_bought"):
        assert any(f":related:{relation}:" in key for key in related), relation
    for order, events in orders(log).items():
        assert_same(expected, state(await apply(events, batch_size)), f"{order}/{batch_size}")


async def test_a_late_click_pairs_with_the_conversion_after_it() -> None:
    # The conversion arrives first (its topic was read first); the click 10 minutes before
    # it comes later and still counts as viewed-then-bought, once.
    click = {"event_id": "c", "type": "click", "user_id": "u", "item_id": "a", "timestamp": T0_MS}
    buy = {**click, "event_id": "b", "type": "buy", "item_id": "b", "timestamp": T0_MS + 600_000}
    late = await apply([buy, click], 1)
    in_time = await apply([click, buy], 1)
    key = KEYS.related("viewed_then_bought", "a")
    assert state(late)[key] == state(in_time)[key] == {b"b": 1.0}


async def test_a_conversion_does_not_pair_with_later_clicks_outside_the_window() -> None:
    # Clicks after a conversion are not "viewed then bought", whichever arrives first.
    buy = {"event_id": "b", "type": "buy", "user_id": "u", "item_id": "b", "timestamp": T0_MS}
    click = {**buy, "event_id": "c", "type": "click", "item_id": "a", "timestamp": T0_MS + 1}
    for events in ([click, buy], [buy, click]):
        store = await apply(events, 1)
        assert KEYS.related("viewed_then_bought", "a") not in state(store)
