"""New items in the personal engine (features/personal/created.py): creation times told by
the catalog, and the for-you blend weighing a new item's factor score up."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.features.catalog.agent import CatalogHandler
from pipeline.features.personal.agent import PersonalHandler
from pipeline.features.personal.created import CreationTimes
from pipeline.features.personal.engine import Engine
from pipeline.features.personal.mf import ImplicitMF
from tests.unit.features.helpers import KEYS, T0_MS, run, settings, store_at
from tests.unit.features.personal.helpers import from_settings, make_event

DAY_MS = 86_400_000


def test_times_told_before_an_item_joins_the_model_apply_when_it_does() -> None:
    model = ImplicitMF(n_factors=2)
    model.learn_one("u", "old", 1.0, key="e1")
    times = CreationTimes()
    times.tell(model, {"old": 1_000, "later": 5_000, "undated": None})
    assert times.untold(["old", "later", "undated", "unknown", "unknown"]) == ["unknown"]
    assert times.since(model, 2_000).tolist() == [False]
    model.learn_one("u", "undated", 1.0, key="e2")
    model.learn_one("u", "later", 1.0, key="e3")
    # Model order: old, undated (no time: never new), later.
    assert times.since(model, 2_000).tolist() == [False, False, True]
    assert times.since(model, 0).tolist() == [True, False, True]
    # A later answer replaces the earlier one.
    times.tell(model, {"old": 9_000})
    assert times.since(model, 2_000).tolist() == [True, False, True]
    # Also when the earlier one was still waiting for the item to join.
    times.tell(model, {"joining": 1_000})
    model.learn_one("u", "joining", 1.0, key="e4")
    times.tell(model, {"joining": 7_000})
    assert times.since(model, 2_000).tolist() == [True, False, True, True]


def test_an_item_the_catalog_does_not_know_is_asked_again_a_minute_later() -> None:
    times = CreationTimes()
    assert times.untold(["a", "b"], now_s=100.0) == ["a", "b"]
    times.unanswered(["a"], now_s=100.0)
    assert times.untold(["a", "b"], now_s=130.0) == ["b"]
    assert times.untold(["a", "b"], now_s=160.0) == ["a", "b"]


def twin_engine(weight: float) -> Engine:
    """An engine where items ``twin-old`` and ``twin-new`` have the same factors and bias
    for every user, and ``twin-new`` was created a day before the latest event."""
    engine = Engine(from_settings(new_item_weight=weight, neighbour_weight=0.0))
    for n in range(40):
        engine.learn(make_event("click", f"u{n % 4}", f"item-{n % 7}", t=1000 * n))
    engine.learn(make_event("click", "u9", "twin-old", t=50_000))
    engine.learn(make_event("click", "u9", "twin-new", t=50_001))
    model = engine.model
    # Both twins point where u0's taste does (and away from some other users').
    taste = model.user_factors["u0"]
    for twin in ("twin-old", "twin-new"):
        model.item_factors[model.item_index[twin]] = 3.0 * taste / np.linalg.norm(taste)
        model.item_bias[model.item_index[twin]] = 0.0
    engine.set_created(
        {"twin-old": engine.now_ms - 400 * DAY_MS, "twin-new": engine.now_ms - DAY_MS}
    )
    return engine


@pytest.mark.parametrize("weight", [1.0, 2.5])
def test_a_new_items_positive_factor_score_counts_one_plus_the_weight_times(weight: float) -> None:
    engine = twin_engine(weight)
    index = engine.model.item_index
    old, new = index["twin-old"], index["twin-new"]
    logits = []
    for user in ("u0", "u1", "u2", "u3"):
        parts = engine.recommender.parts(user)
        assert parts is not None
        logit = parts.factors[old]
        assert parts.factors[new] == pytest.approx(logit)
        lift = parts.blend[new] - parts.blend[old]
        assert lift == pytest.approx(weight * max(logit, 0.0), abs=1e-6)
        logits.append(logit)
    # Both cases were met: a positive score lifted, a negative one left alone.
    assert max(logits) > 0.5 and min(logits) < 0.0


def test_with_the_weight_at_zero_or_an_old_creation_time_new_and_old_rank_alike() -> None:
    engine = twin_engine(0.0)
    parts = engine.recommender.parts("u0")
    assert parts is not None
    index = engine.model.item_index
    assert parts.blend[index["twin-new"]] == pytest.approx(parts.blend[index["twin-old"]])
    aged = twin_engine(1.0)
    aged.set_created({"twin-new": aged.now_ms - 8 * DAY_MS})  # the default window is 7 days
    parts = aged.recommender.parts("u0")
    assert parts is not None
    assert parts.blend[index["twin-new"]] == pytest.approx(parts.blend[index["twin-old"]])
    assert not np.any(aged.new_items())


@pytest.mark.asyncio
async def test_the_agent_reads_creation_times_of_the_items_a_batch_meets() -> None:
    """From the catalog's ``{p}:items`` scores; an item whose record arrives after its first
    events is asked again when a later batch names it."""
    store = store_at(T0_MS)
    config = settings()
    catalog = [
        {"item_id": "fresh", "title": "Fresh", "created_at": T0_MS - DAY_MS},
        {"item_id": "aged", "title": "Aged", "created_at": T0_MS - 100 * DAY_MS},
        {"item_id": "undated", "title": "Undated"},
    ]
    await run(CatalogHandler(KEYS, config), store, catalog)
    handler = PersonalHandler(config, KEYS)
    clock = [1000.0]
    handler.clock = lambda: clock[0]

    def click(n: int, item: str) -> dict:
        return {
            "event_id": f"e{n}",
            "type": "click",
            "user_id": "u1",
            "item_id": item,
            "timestamp": T0_MS + n,
        }

    await run(
        handler, store, [click(1, "fresh"), click(2, "aged"), click(3, "undated"), click(4, "late")]
    )

    def new() -> set[str]:
        engine = handler.engine
        mask = engine.new_items()
        return {item for item, is_new in zip(engine.model.item_ids, mask, strict=True) if is_new}

    assert new() == {"fresh"}
    late = {"item_id": "late", "title": "Late", "created_at": T0_MS - 2 * DAY_MS}
    await run(CatalogHandler(KEYS, config), store, [late])
    await run(handler, store, [click(5, "fresh")])
    assert new() == {"fresh"}
    # Asked again a minute after the catalog had no record of it, not before.
    clock[0] += 30
    await run(handler, store, [click(6, "late")])
    assert new() == {"fresh"}
    clock[0] += 30
    await run(handler, store, [click(7, "late")])
    assert new() == {"fresh", "late"}
    # A restarted worker reads every known item's time when it loads.
    restarted = PersonalHandler(config, KEYS)
    await run(restarted, store, [click(8, "aged")])
    handler = restarted
    assert new() == {"fresh", "late"}


def test_an_item_created_long_after_the_latest_event_is_not_new() -> None:
    """Replaying an old log with a catalog exported today: its records carry the export's
    time, years after the events. A creation time a little ahead of the latest event (a
    record published while the worker has not yet learned the newest events) is new."""
    engine = twin_engine(1.0)
    index = engine.model.item_index
    old, new = index["twin-old"], index["twin-new"]
    for ahead_ms, lifted in ((30 * DAY_MS, False), (60_000, True)):
        engine.set_created({"twin-new": engine.now_ms + ahead_ms})
        parts = engine.recommender.parts("u0")
        assert parts is not None
        assert bool(parts.blend[new] > parts.blend[old] + 0.1) == lifted, ahead_ms
