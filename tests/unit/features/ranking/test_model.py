"""The click model of personalised ranking (pipeline.features.ranking.model): River-style
checks, learning, position debiasing, state and hashing."""

from __future__ import annotations

import inspect
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.core.settings import load_settings
from pipeline.features.ranking.config import ranking_config
from pipeline.features.ranking.features import features, observations
from pipeline.features.ranking.model import ClickModel, RankingConfig
from tests.unit.features.ranking.helpers import click, impression

ROOT = Path(__file__).resolve().parents[4]


def learn(model: ClickModel, events, categories: dict[str, list[str]] | None = None) -> None:
    for event in events:
        for names, clicked, weight in observations(event, categories or {}, 0.3, 1.0):
            model.learn_one(names, clicked, weight)


def stream(seed: int = 0, n: int = 300) -> list:
    """A small reproducible stream of impressions and clicks."""
    rng = np.random.default_rng(seed)
    items = [f"item-{k}" for k in range(12)]
    events = []
    for t in range(n):
        user = f"user-{rng.integers(8)}"
        shown = [str(i) for i in rng.choice(items, 5, replace=False)]
        context = {"device": ["web", "ios"][t % 2], "page": "home", "hour": int(rng.integers(24))}
        events.append(impression(user, shown, context, t))
        position = int(rng.integers(5))
        events.append(click(user, shown[position], position, context, t))
    return events


CATEGORIES = {f"item-{k}": [f"cat-{k % 3}"] for k in range(12)}


# --- River's estimator contract ----------------------------------------------------------------


def test_hyperparameters_are_init_arguments_stored_under_the_same_names():
    model = ClickModel(n_bits=16, learning_rate=0.1, l2=1e-4, seed=3)
    parameters = inspect.signature(ClickModel.__init__).parameters
    assert [name for name in parameters if name != "self"] == list(model._get_params())
    assert model._get_params() == {"n_bits": 16, "learning_rate": 0.1, "l2": 1e-4, "seed": 3}
    assert repr(model) == "ClickModel(n_bits=16, learning_rate=0.1, l2=0.0001, seed=3)"


def test_a_clone_has_the_same_params_no_state_and_learns_identically():
    model = ClickModel(n_bits=18, learning_rate=0.07, seed=5)
    learn(model, stream(1), CATEGORIES)
    clone = model.clone()
    assert clone._get_params() == model._get_params()
    assert clone.weights == {}
    fresh = ClickModel(n_bits=18, learning_rate=0.07, seed=5)
    learn(clone, stream(1), CATEGORIES)
    learn(fresh, stream(1), CATEGORIES)
    assert clone.weights == fresh.weights == model.weights


def test_same_data_twice_gives_identical_weights_and_the_seed_matters():
    first, second = ClickModel(), ClickModel()
    learn(first, stream(2), CATEGORIES)
    learn(second, stream(2), CATEGORIES)
    assert first.weights == second.weights
    assert first.weights

    other_seed = ClickModel(seed=43)
    learn(other_seed, stream(2), CATEGORIES)
    assert set(other_seed.weights) != set(first.weights)


def test_pickle_round_trip_keeps_params_and_predictions():
    model = ClickModel()
    learn(model, stream(3), CATEGORIES)
    restored = pickle.loads(pickle.dumps(model))
    x = features("user-1", "item-3", ["cat-0"], {"device": "web"}, None)
    assert restored._get_params() == model._get_params()
    assert restored.predict_proba_one(x) == model.predict_proba_one(x)


def test_learn_one_takes_a_river_dict_or_a_list_of_names():
    as_dict, as_list = ClickModel(), ClickModel()
    names = ["bias", "item=a", "ctx:device=web"]
    as_dict.learn_one(dict.fromkeys(names, 1.0), True)
    as_list.learn_one(names, True)
    assert as_dict.weights == as_list.weights
    assert as_dict.predict_proba_one(names) > 0.5
    assert as_dict.predict_one(names) is True
    # Real-valued features scale their step.
    scaled = ClickModel()
    scaled.learn_one({"bias": 2.0}, True)
    assert scaled.weights_for([scaled.index("bias")]) == [pytest.approx(2 * 0.05 * 0.5)]


def test_an_untrained_model_ranks_in_input_order():
    ranked = ClickModel().rank("u", ["c", "a", "b"])
    assert [item for item, _ in ranked] == ["c", "a", "b"]
    assert all(score == 0.5 for _, score in ranked)


# --- learning ----------------------------------------------------------------------------------


def test_learns_each_group_of_users_taste_for_a_category():
    """Group A clicks category-x items, group B category-y; each gets its own ranking."""
    rng = np.random.default_rng(7)
    items = [f"x{k}" for k in range(6)] + [f"y{k}" for k in range(6)]
    categories = {item: ["cat-x" if item[0] == "x" else "cat-y"] for item in items}
    users = {f"a{k}": "x" for k in range(10)} | {f"b{k}": "y" for k in range(10)}
    events = []
    for t in range(3000):
        user = f"{'ab'[t % 2]}{rng.integers(10)}"
        shown = [str(i) for i in rng.choice(items, 6, replace=False)]
        events.append(impression(user, shown, {"device": "web"}, t))
        for position, item in enumerate(shown):
            liked = item[0] == users[user]
            if rng.random() < (0.6 if liked else 0.03):
                events.append(click(user, item, position, {"device": "web"}, t))
    model = ClickModel()
    learn(model, events, categories)

    for user, taste in users.items():
        ranked = [item for item, _ in model.rank(user, items, categories, {"device": "web"})]
        assert {item[0] for item in ranked[:6]} == {taste}, (user, ranked)


def test_position_bias_is_factored_out_of_the_ranking():
    """Items shown first get clicked more at equal relevance; the model must not rank by that.

    The logged policy shows the least relevant item first 80% of the time and shuffles
    otherwise; examination falls steeply with position. Click-through rates then follow
    display order, so a model without the position feature reproduces it, while the click
    model, which learns a position bias and leaves it out at ranking time, recovers relevance.
    """
    relevance = {"p": 0.1, "q": 0.2, "r": 0.3, "s": 0.4}
    examination = [1.0, 0.3, 0.12, 0.05]
    rng = np.random.default_rng(0)
    events = []
    clicks_at = [0, 0, 0, 0]
    for t in range(10_000):
        user = f"u{rng.integers(50)}"
        shown = list(relevance)
        if rng.random() < 0.2:
            rng.shuffle(shown)
        events.append(impression(user, shown, n=t))
        for position, item in enumerate(shown):
            if rng.random() < examination[position] * relevance[item]:
                clicks_at[position] += 1
                events.append(click(user, item, position, n=t))
    # The data has the bias: far more clicks land on the first position.
    assert clicks_at == sorted(clicks_at, reverse=True)

    # A larger step than the default's, so that AdaGrad's shrinking steps get the position
    # weights close to their limit within these 10,000 events.
    debiased, naive = ClickModel(learning_rate=0.1), ClickModel(learning_rate=0.1)
    for event in events:
        for names, clicked, weight in observations(event, {}, 0.3, 1.0):
            debiased.learn_one(names, clicked, weight)
            naive.learn_one([n for n in names if not n.startswith("pos=")], clicked, weight)

    def order(model: ClickModel) -> list[str]:
        return [item for item, _ in model.rank("newcomer", list(relevance))]

    # Without the position feature the ranking follows the display order ...
    assert order(naive)[0] == "p"
    # ... with it, the most relevant item leads and the most-promoted one comes last.
    assert order(debiased)[0] == "s"
    assert order(debiased)[-1] == "p"
    # The learned position bias falls with position, like the examination probability.
    position_weights = debiased.weights_for([debiased.index(f"pos={p}") for p in range(4)])
    assert position_weights == sorted(position_weights, reverse=True)
    assert position_weights[0] - position_weights[1] == pytest.approx(np.log(1 / 0.3), abs=0.4)


# --- state: deltas, snapshots, hashing ---------------------------------------------------------


def test_drained_deltas_restore_a_fresh_model_exactly():
    model = ClickModel()
    learn(model, stream(4), CATEGORIES)
    snapshot = model.drain_deltas()
    assert snapshot == {index: w for index, w in model.weights.items() if w != 0.0}
    assert model.drain_deltas() == {}

    restored = model.clone()
    restored.set_weights(snapshot)
    for user in ("user-1", "user-5", "stranger"):
        ranked = model.rank(user, list(CATEGORIES), CATEGORIES, {"device": "ios"})
        assert restored.rank(user, list(CATEGORIES), CATEGORIES, {"device": "ios"}) == ranked


def test_batches_through_a_shared_increment_table_match_one_long_lived_model():
    """What the agent does: per batch a fresh model loads the touched weights and AdaGrad
    sums from their tables, learns, and adds its deltas to the tables (HINCRBYFLOAT). The
    result is the model that learned the whole stream in one go."""
    events = stream(5, n=400)
    table: dict[int, float] = {}
    sums: dict[int, float] = {}
    for start in range(0, len(events), 50):
        batch = ClickModel()
        steps = [
            (batch.indexes(names), clicked, weight)
            for event in events[start : start + 50]
            for names, clicked, weight in observations(event, CATEGORIES, 0.3, 1.0)
        ]
        touched = {i for indexes, _, _ in steps for i in indexes}
        batch.set_weights({i: table[i] for i in touched if i in table})
        batch.set_sums({i: sums[i] for i in touched if i in sums})
        batch.learn_many(steps)
        for index, delta in batch.drain_deltas().items():
            table[index] = table.get(index, 0.0) + delta
        for index, delta in batch.drain_sum_deltas().items():
            sums[index] = sums.get(index, 0.0) + delta

    whole = ClickModel()
    learn(whole, events, CATEGORIES)
    assert table.keys() == {i for i, w in whole.weights.items() if w != 0.0}
    for index, weight in whole.weights.items():
        assert table.get(index, 0.0) == pytest.approx(weight, rel=1e-9, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    start=st.dictionaries(st.integers(0, 63), st.floats(-5, 5), max_size=20),
    steps=st.lists(
        st.tuples(
            st.lists(st.integers(0, 63), min_size=1, max_size=8),
            st.booleans(),
            st.floats(0.01, 2.0),
        ),
        max_size=30,
    ),
)
def test_start_plus_deltas_is_the_current_weights(start, steps):
    model = ClickModel(n_bits=6)
    model.set_weights(start)
    for indexes, clicked, weight in steps:
        p = model.learn_indexes(indexes, clicked, weight)
        assert 0.0 < p < 1.0
    deltas = model.drain_deltas()
    touched = set(start) | set(deltas)
    for index in touched:
        rebuilt = start.get(index, 0.0) + deltas.get(index, 0.0)
        assert rebuilt == pytest.approx(model.weights_for([index])[0], rel=1e-12, abs=1e-12)


def test_feature_indexes_are_stable_across_processes():
    # Computed once with zlib.crc32(name, seed) & (2**20 - 1); must never change, or every
    # stored weight table silently turns into noise.
    model = ClickModel()
    assert model.index("item=book") == 576474
    assert model.index("bias") == 533761
    assert ClickModel(seed=7).index("item=book") == 437806
    code = (
        "from pipeline.features.ranking.model import ClickModel; "
        "print(ClickModel().index('item=book'))"
    )
    for hash_seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            capture_output=True,
            text=True,
            check=True,
        )
        assert out.stdout.strip() == "576474"


def test_ranking_config_reads_settings_fields():
    # The settings' defaults are the model's defaults (RankingConfig has none of its own:
    # these are the values that ship, and ClickModel's own defaults).
    assert ranking_config(load_settings()) == RankingConfig(
        n_bits=20, learning_rate=0.05, l2=1e-6, seed=42, impression_weight=0.3, click_weight=1.0
    )
    assert ranking_config(load_settings()).model()._get_params() == ClickModel()._get_params()
    config = ranking_config(load_settings(ranking_n_bits=12, ranking_impression_weight=0.5))
    assert (config.n_bits, config.impression_weight, config.seed) == (12, 0.5, 42)
    assert config.model()._get_params()["n_bits"] == 12
