"""The freshness prior of the factor model (features/personal/freshness.py): a bias per item
age (powers of two seconds since created_at), learned from events, stored as deltas."""

from __future__ import annotations

import asyncio

import numpy as np

from pipeline.core.keys import Keys
from pipeline.features.personal import state
from pipeline.features.personal.created import CreationTimes
from pipeline.features.personal.engine import Engine
from pipeline.features.personal.freshness import BUCKETS, FreshnessPrior
from pipeline.features.personal.mf import ImplicitMF
from pipeline.store.base import Writes
from pipeline.store.memory import MemoryStore
from tests.unit.features.personal.helpers import T0, event_at, from_settings

DAY_MS = 86_400_000


def prior_of(created: dict[str, int | None], now_ms: int) -> FreshnessPrior:
    model = ImplicitMF(n_factors=4)
    for item in created:
        model.add_item(item)
    times = CreationTimes()
    times.tell(model, created)
    prior = FreshnessPrior(times, model, 0.1, 300.0)
    prior.now_ms = now_ms
    return prior


def test_items_fall_in_buckets_of_powers_of_two_seconds() -> None:
    now = T0 + 10**9
    ages_s = {"now": 0, "one": 1, "three": 3, "thousand": 1000, "old": 10**11}
    created: dict[str, int | None] = {item: now - 1000 * age for item, age in ages_s.items()}
    created |= {"future": now + 5000, "exported": now + 301_000, "untimed": None}
    prior = prior_of(created, now + 999)  # ages count to the second
    buckets = dict(zip(prior.model.item_ids, prior.buckets().tolist(), strict=True))
    assert buckets == {
        "now": 0,
        "one": 1,  # [1, 3)
        "three": 2,  # [3, 7)
        "thousand": 9,  # [511, 1023)
        "old": BUCKETS - 1,
        "future": 0,
        # Created further after the latest event than the skew allowed (300 s): the time
        # of a catalog export, not the item's age; no prior.
        "exported": BUCKETS,
        "untimed": BUCKETS,  # no prior
    }
    # An item told later (or joining with a time waiting) is counted from then on.
    prior.created.tell(prior.model, {"untimed": now - 2000})
    assert prior.buckets()[prior.model.item_index["untimed"]] == 1


def test_a_step_moves_the_item_and_its_age_by_the_gradient_of_the_logit_with_the_prior() -> None:
    now = T0 + DAY_MS
    model = ImplicitMF(n_factors=4, learning_rate=0.1, l2=0.0, n_negatives=0)
    times = CreationTimes()
    for item in ("fresh", "old"):
        model.add_item(item)
    times.tell(model, {"fresh": now - 2000, "old": now - DAY_MS})
    model.freshness = prior = FreshnessPrior(times, model, 0.5, 300.0)
    prior.now_ms = now
    fresh, old = prior.buckets().tolist()
    prior.bias[fresh], prior.bias[old] = 0.3, -0.2
    user = np.full(4, 0.1, np.float32)
    model.user_factors["u"] = user.copy()
    rows = model.item_factors[:2].copy()
    # The rule, in float64: the logit counts the prior; bias and prior move by the gradient.
    logits = rows.astype(np.float64) @ user + np.array([0.3, -0.2])
    gradient = np.array([1.0, 0.0]) - 1.0 / (1.0 + np.exp(-logits))
    model.learn_many("u", ["fresh", "old"], [1.0, 0.0], [1.0, 1.0])
    assert np.allclose(model.item_bias[:2], 0.1 * gradient, atol=1e-6)
    assert np.allclose(prior.bias[[fresh, old]], [0.3, -0.2] + 0.5 * gradient, atol=1e-6)
    assert np.allclose(model.user_factors["u"], user + 0.1 * gradient @ rows, atol=1e-6)
    # Scores count the prior; an item without a creation time has none.
    model.add_item("untimed")
    assert prior.bias[BUCKETS] == 0.0
    scores = model.score_all("u")
    assert np.allclose(
        scores[:2],
        model.item_factors[:2] @ model.user_factors["u"]
        + model.item_bias[:2]
        + prior.bias[[fresh, old]],
    )
    assert np.isclose(
        model.predict_one("u", "fresh"), 1.0 / (1.0 + np.exp(-float(scores[0]))), atol=1e-6
    )
    # The items' prior is kept between lists, and follows any change of the biases.
    prior.bias[fresh] += 1.0
    assert np.isclose(model.score_all("u")[0], scores[0] + 1.0)


def test_an_item_listed_twice_in_a_step_counts_its_prior_once_and_learns_both() -> None:
    prior = prior_of({"a": T0, "b": None}, T0 + 10_000)
    bucket = prior.buckets()[0]
    prior.bias[bucket] = 1.0
    item_bias = np.array([0.5, 0.25], np.float32)
    index = np.array([0, 1, 0])
    saved = prior.before_step(item_bias, index)
    assert item_bias.tolist() == [1.5, 0.25]  # "b" has no creation time: no prior
    item_bias += np.array([0.02 + 0.04, 0.01], np.float32)  # the step: both of a's moves
    prior.after_step(item_bias, index, saved, 0.1)
    assert np.allclose(item_bias, [0.56, 0.26])
    assert np.isclose(prior.bias[bucket], 1.0 + 0.1 * (0.06 / 0.1))
    assert prior.bias[BUCKETS] == 0.0 and np.count_nonzero(prior.bias) == 1


def fresh_clicks_engine(rate: float) -> Engine:
    """Clicks on items published a minute before, with a hundred old items about (every
    item with its creation time)."""
    engine = Engine(from_settings(freshness_rate=rate))
    created = {f"old{n}": T0 - 400 * DAY_MS for n in range(100)}
    created |= {f"new{n}": T0 + 60_000 * (n + 1) for n in range(60)}
    engine.set_created(created)
    for n in range(100):
        engine.learn(event_at("click", f"u{n % 30}", f"old{n}", T0 + n))
    for n in range(40):
        at = T0 + 60_000 * (n + 2)
        for u in range(3):
            engine.learn(event_at("click", f"u{(n + u) % 30}", f"new{n}", at + u))
    return engine


def blend_lead(engine: Engine) -> float:
    """How far the untouched ``brand-new`` item leads every old item (each clicked once) in
    a stranger's for-you blend."""
    parts = engine.recommender.parts("stranger")
    assert parts is not None
    index = engine.model.item_index
    old = [index[f"old{n}"] for n in range(100)]
    return float(parts.blend[index["brand-new"]] - parts.blend[old].max())


def test_the_prior_learns_that_fresh_items_are_what_users_click() -> None:
    engine = fresh_clicks_engine(0.05)
    prior = engine.model.freshness
    assert prior is not None
    buckets = prior.buckets()
    index = engine.model.item_index
    minute, old = buckets[index["new39"]], buckets[index["old0"]]
    assert prior.bias[minute] > 0 > prior.bias[old]
    # An item nobody has touched yet, published now, ranks above untouched old ones for a
    # user nobody knows: the prior says what its age said so far.
    engine.set_created({"brand-new": engine.now_ms - 30_000, "old-unseen": T0 - 400 * DAY_MS})
    engine.model.add_item("brand-new")
    engine.model.add_item("old-unseen")
    scores = engine.model.score_all("stranger")
    assert scores[index["brand-new"]] > scores[index["old-unseen"]]
    assert blend_lead(engine) > 0
    # Off (the default): no prior, the two untouched items score alike.
    off = fresh_clicks_engine(0.0)
    assert off.model.freshness is None
    off.model.add_item("brand-new")
    off.model.add_item("old-unseen")
    scores = off.model.score_all("stranger")
    assert scores[off.model.item_index["brand-new"]] == scores[off.model.item_index["old-unseen"]]
    assert blend_lead(off) < 0


def test_drained_prior_deltas_add_up_in_the_store_and_restore() -> None:
    prior = prior_of({"a": T0}, T0 + 5000)
    assert prior.drain_delta() is None
    item_bias = np.zeros(1, np.float32)
    saved = prior.before_step(item_bias, np.array([0]))
    item_bias[0] += 0.05  # a step at rate 0.1 with a gradient of 0.5
    prior.after_step(item_bias, np.array([0]), saved, 0.1)
    assert np.isclose(prior.bias[prior.buckets()[0]], 0.05)  # the prior's rate (0.1) x 0.5
    delta = prior.drain_delta()
    assert delta is not None and prior.drain_delta() is None
    store, keys = MemoryStore(), Keys("t")
    field = state.FRESHNESS_FIELD
    # Two workers' deltas add up.
    asyncio.run(store.apply(Writes().hadd_vectors(keys.mf_freshness(), {field: (delta, None)})))
    asyncio.run(store.apply(Writes().hadd_vectors(keys.mf_freshness(), {field: (delta, None)})))
    again = prior_of({"a": T0}, T0 + 5000)
    again.restore(asyncio.run(store.hget(keys.mf_freshness(), field)))
    bucket = prior.buckets()[0]
    assert np.isclose(again.bias[bucket], 2 * prior.bias[bucket])
    assert np.count_nonzero(again.bias) == 1
    # Nothing stored, or a vector of another size: nothing learned yet.
    again.restore(None)
    again.restore(b"\0" * 8)
    assert np.isclose(again.bias[bucket], 2 * prior.bias[bucket])


def test_the_prior_is_written_loaded_and_refreshed_with_the_items() -> None:
    engine = fresh_clicks_engine(0.05)
    store, keys = MemoryStore(), Keys("t")
    changes = engine.drain_changes()
    assert changes.freshness_delta is not None
    asyncio.run(store.apply(state.changes_writes(engine, changes, keys, 3600)))
    assert engine.drain_changes().freshness_delta is None
    # A worker that starts loads it.
    started = Engine(from_settings(freshness_rate=0.05))
    loaded, learned = started.model.freshness, engine.model.freshness
    assert loaded is not None and learned is not None
    asyncio.run(state.load_items(store, keys, started, engine.now_ms))
    assert np.array_equal(loaded.bias, learned.bias)
    # What another worker adds reaches this one before its next batch.
    more = np.zeros(BUCKETS, dtype="<f4")
    more[3] = 1.0
    writes = Writes().hadd_vectors(
        keys.mf_freshness(), {state.FRESHNESS_FIELD: (more.tobytes(), None)}
    )
    asyncio.run(store.apply(writes))
    before = float(loaded.bias[3])
    asyncio.run(state.refresh_items(store, keys, started, ["new0"]))
    assert np.isclose(loaded.bias[3], before + 1.0)
    # Off: nothing written, nothing read.
    off = fresh_clicks_engine(0.0)
    assert off.drain_changes().freshness_delta is None
