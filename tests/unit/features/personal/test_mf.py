"""River-style contract checks of the personal factor model (ImplicitMF), its state
round trips, and what it refuses.

Nothing here needs a server: the model is a plain class, fed plain (user, item, label).
"""

from __future__ import annotations

import inspect
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.features.personal.mf import ImplicitMF
from tests.unit.features.personal.helpers import ITEMS, USERS


def training_data(n: int = 400, seed: int = 0) -> list[tuple[str, str, float]]:
    """(user, item, label): two taste groups, so the model has structure to find."""
    rng = np.random.default_rng(seed)
    data = []
    for _ in range(n):
        user = int(rng.integers(len(USERS)))
        liked = ITEMS[: len(ITEMS) // 2] if user % 2 else ITEMS[len(ITEMS) // 2 :]
        item = liked[int(rng.integers(len(liked)))]
        data.append((USERS[user], item, 1.0))
    return data


def fit(model: ImplicitMF, data: list[tuple[str, str, float]]) -> ImplicitMF:
    for user, item, label in data:
        model.learn_one(user, item, label)
    return model


def predictions(model: ImplicitMF) -> np.ndarray:
    return np.array([[model.predict_one(user, item) for item in ITEMS] for user in USERS])


# --- ImplicitMF: River's estimator contract ------------------------------------------------

PARAMS = {
    "n_factors": 8,
    "learning_rate": 0.07,
    "l2": 0.01,
    "n_negatives": 3,
    "negative_weight": 0.5,
    "init_std": 0.2,
    "seed": 5,
}


def test_params_are_stored_under_init_names():
    names = [name for name in inspect.signature(ImplicitMF.__init__).parameters if name != "self"]
    assert sorted(names) == sorted(PARAMS)
    model = ImplicitMF(**PARAMS)
    for name, value in PARAMS.items():
        assert getattr(model, name) == value
    assert model._get_params() == PARAMS


def test_clone_has_equal_params_and_no_state():
    model = fit(ImplicitMF(**PARAMS), training_data(50))
    clone = model.clone()
    assert clone is not model
    assert clone._get_params() == model._get_params()
    assert clone.item_ids == [] and clone.user_factors == {}
    # A clone learns exactly what a fresh model with the same params learns.
    data = training_data(100, seed=1)
    np.testing.assert_array_equal(
        predictions(fit(clone, data)), predictions(fit(ImplicitMF(**PARAMS), data))
    )


def test_same_seed_same_factors_and_predictions():
    data = training_data()
    first, second = fit(ImplicitMF(seed=3), data), fit(ImplicitMF(seed=3), data)
    assert first.item_ids == second.item_ids
    count = len(first.item_ids)
    np.testing.assert_array_equal(first.item_factors[:count], second.item_factors[:count])
    np.testing.assert_array_equal(first.item_bias[:count], second.item_bias[:count])
    assert first.user_factors.keys() == second.user_factors.keys()
    for user, vector in first.user_factors.items():
        np.testing.assert_array_equal(vector, second.user_factors[user])
    np.testing.assert_array_equal(predictions(first), predictions(second))


def test_different_seeds_differ():
    data = training_data()
    first, second = fit(ImplicitMF(seed=3), data), fit(ImplicitMF(seed=4), data)
    count = len(first.item_ids)
    assert not np.allclose(first.item_factors[:count], second.item_factors[:count])
    assert not np.allclose(predictions(first), predictions(second))


def test_positives_raise_the_prediction():
    model = fit(ImplicitMF(seed=1), training_data(200))
    user, item = "user-new", ITEMS[0]
    before = model.predict_one(user, item)
    for _ in range(5):
        model.learn_one(user, item, 1.0)
    assert model.predict_one(user, item) > before
    assert 0.0 < model.predict_one(user, item) < 1.0


def test_negative_lowers_the_prediction():
    model = fit(ImplicitMF(seed=1), training_data(200))
    user, item = USERS[1], ITEMS[0]
    before = model.predict_one(user, item)
    for _ in range(5):
        model.learn_one(user, item, 0.0)
    assert model.predict_one(user, item) < before


def test_unknown_item_predicts_zero():
    model = fit(ImplicitMF(), training_data(20))
    assert model.predict_one(USERS[0], "item-never-seen") == 0.0


@given(st.lists(st.sampled_from(ITEMS), max_size=len(ITEMS), unique=True), st.sampled_from(USERS))
@settings(max_examples=50, deadline=None)
def test_rank_is_a_permutation_sorted_by_predict_one(items, user):
    model = fit(ImplicitMF(seed=2), training_data(150))
    ranked = model.rank(user, items)
    assert sorted(ranked) == sorted(items)
    scores = [model.predict_one(user, item) for item in ranked]
    assert scores == sorted(scores, reverse=True)


def test_snapshot_round_trip():
    """Copying every item/user state into a fresh model reproduces every prediction."""
    model = fit(ImplicitMF(**PARAMS), training_data())
    fresh = model.clone()
    for item in model.item_ids:
        fresh.set_item_state(item, model.item_state(item))
    for user in model.user_factors:
        state = model.user_state(user)
        assert state is not None
        fresh.set_user_state(user, state)
    assert fresh.item_ids == model.item_ids
    np.testing.assert_allclose(predictions(fresh), predictions(model), rtol=0, atol=1e-7)
    for user in USERS:
        np.testing.assert_allclose(fresh.score_all(user), model.score_all(user), atol=1e-7)
    assert fresh.user_state("nobody") is None


def test_pickle_round_trip():
    model = fit(ImplicitMF(**PARAMS), training_data())
    copy = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(predictions(copy), predictions(model))
    # The random stream travels too: both go on learning identically.
    data = training_data(50, seed=9)
    np.testing.assert_array_equal(predictions(fit(copy, data)), predictions(fit(model, data)))


# --- restoring state ----------------------------------------------------------------------


def test_restored_items_keep_their_original_order():
    model = ImplicitMF(n_factors=4, seed=3)
    for n in range(300):
        model.learn_one(f"user-{n % 7}", f"item-{(n * 37) % 200}", 1.0, key=f"e{n}")
    states = {item: model.item_state(item) for item in model.item_ids}
    restored = ImplicitMF(n_factors=4, seed=3)
    # Whatever order the store returns, restoring by "i" rebuilds the same index order.
    for item, state in sorted(states.items(), key=lambda pair: pair[1]["i"]):
        restored.set_item_state(item, state)
    assert restored.item_ids == model.item_ids
    assert restored.sample_negatives("item-1", 4, "k") == model.sample_negatives("item-1", 4, "k")


def test_vectors_of_another_size_are_refused_with_a_clear_message():
    small = ImplicitMF(n_factors=4)
    small.learn_one("u", "a", 1.0)
    big = ImplicitMF(n_factors=8)
    with pytest.raises(ValueError, match="PIPELINE_MF_FACTORS"):
        big.set_item_state("a", small.item_state("a"))
    with pytest.raises(ValueError, match="factors"):
        big.set_user_state("u", small.user_state("u"))
