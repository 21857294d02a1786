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
from pipeline.features.personal.sampling import stable_vector
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
        fresh.set_item_row(item, model.item_row(item))
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
    rows = {item: model.item_row(item) for item in model.item_ids}
    restored = ImplicitMF(n_factors=4, seed=3)
    # Whatever order the store returns, restoring by the stored index rebuilds the order.
    for item, row in sorted(rows.items(), key=lambda pair: ImplicitMF.row_index(pair[1])):
        restored.set_item_row(item, row)
    assert restored.item_ids == model.item_ids
    assert restored.sample_negatives("item-1", 4, "k") == model.sample_negatives("item-1", 4, "k")


def test_vectors_of_another_size_are_refused_with_a_clear_message():
    small = ImplicitMF(n_factors=4)
    small.learn_one("u", "a", 1.0)
    big = ImplicitMF(n_factors=8)
    with pytest.raises(ValueError, match="PIPELINE_MF_FACTORS"):
        big.set_item_row("a", small.item_row("a"))
    with pytest.raises(ValueError, match="JSON"):
        small.set_item_row("a", b'{"v": "AAAA", "b": 0.0, "i": 0}')
    with pytest.raises(ValueError, match="factors"):
        big.set_user_state("u", small.user_state("u"))


# --- item deltas (several workers share the item rows) ---------------------------------------


def _add(rows: dict[str, bytes], deltas: dict[str, tuple[bytes, bytes | None]]) -> None:
    """What ``Writes.hadd_vectors`` does in the store: float32(stored + delta)."""
    for item, (delta, base) in deltas.items():
        stored = rows.get(item, base)
        assert stored is not None
        total = np.frombuffer(stored, "<f4").astype(np.float64)
        total += np.frombuffer(delta, "<f4")
        rows[item] = total.astype("<f4").tobytes()


def test_drained_deltas_rebuild_the_rows_bit_for_bit():
    """One writer: the rows its deltas build in the store equal its own rows exactly."""
    model = ImplicitMF(n_factors=6, seed=5)
    stored: dict[str, bytes] = {}
    for step in range(6):
        for n in range(40):
            model.learn_one(f"u{n % 5}", f"i{(n * 7 + step) % 23}", 1.0, key=f"e{step}-{n}")
        _add(stored, model.drain_deltas())
        assert stored == {item: model.item_row(item) for item in model.item_ids}
    assert model.drain_deltas() == {}


def test_deltas_of_two_workers_both_count():
    """Two models learning from the same stored rows: the store ends with the sum of both
    changes (last-writer-wins would keep one), and a new item's base is sent once."""
    one, two = ImplicitMF(n_factors=4, seed=1), ImplicitMF(n_factors=4, seed=1)
    one.learn_one("a", "x", 1.0, key="e1")
    two.learn_one("b", "x", 1.0, key="e2")
    first, second = one.drain_deltas(), two.drain_deltas()
    assert first["x"][1] is not None and second["x"][1] is not None
    stored: dict[str, bytes] = {}
    _add(stored, first)
    _add(stored, second)
    both = np.frombuffer(stored["x"], "<f4")
    change_one = np.frombuffer(first["x"][0], "<f4")
    change_two = np.frombuffer(second["x"][0], "<f4")
    base = np.frombuffer(first["x"][1], "<f4")
    np.testing.assert_allclose(both, base + change_one + change_two, atol=1e-7)
    assert np.abs(change_one).sum() > 0 and np.abs(change_two).sum() > 0
    # A refresh brings the other worker's change in; the next delta is only the new step.
    one.set_item_row("x", stored["x"])
    assert one.item_row("x") == stored["x"]
    assert one.drain_deltas() == {}


def test_keyed_negatives_are_pinned():
    """The negatives drawn for an event id are part of what a replay must learn again:
    these values were drawn by the model before its draws moved to ``sampling.py``. The
    positive is left out when drawn (``i6`` below), and a pool maps the draws to its items."""
    model = ImplicitMF()
    for i in range(3000):
        model.add_item(f"item-{i}")
    assert model._negative_positions("none", 4, "ev-1") == [2557, 1673, 789, 2905]
    assert model._negative_positions("none", 6, "event-XYZ") == [2705, 2115, 1525, 935, 345, 2755]
    small = ImplicitMF(seed=7)
    for i in range(50):
        small.add_item(f"i{i}")
    assert small._negative_positions("i3", 5, "k-9") == [6, 18, 30, 42, 5]
    assert small._negative_positions("i6", 5, "k-9") == [18, 30, 42, 5]
    small.use_negative_pool([f"i{i}" for i in range(0, 50, 2)])
    assert small._negative_positions("i12", 5, "k-9") == [36, 10, 34, 10]


def test_the_shared_step_arrays_stay_as_built():
    """Positive events share their (labels, weights) arrays per (negatives, weight): no
    step writes them."""
    model = ImplicitMF(n_factors=4, negative_weight=0.5)
    for i, user in enumerate(USERS * 20):
        model.learn_one(user, ITEMS[i % len(ITEMS)], 1.0, (1.0, 3.0)[i % 2], key=f"e{i}")
    assert {weight for _, weight, _ in model._targets} == {1.0, 3.0}
    for (negatives, weight, _), (labels, weights) in model._targets.items():
        assert labels.tolist() == [1.0] + [0.0] * negatives
        assert weights.tolist() == [weight] + [0.5 * weight] * negatives


def test_initial_vectors_are_reproducible_normal_draws_per_id_and_seed():
    """A new id's vector depends only on (id, seed, size, std): equal across models and
    calls, different for another id or seed, and distributed as normal(0, std) draws."""
    first = stable_vector("user-7", 32, 0.1, 42)
    assert first.dtype == np.float32 and first.shape == (32,)
    assert np.array_equal(first, stable_vector("user-7", 32, 0.1, 42))
    assert not np.array_equal(first, stable_vector("user-8", 32, 0.1, 42))
    assert not np.array_equal(first, stable_vector("user-7", 32, 0.1, 43))
    assert stable_vector("ü/7", 5, 0.1, -1).shape == (5,)
    draws = np.stack([stable_vector(f"id-{i}", 32, 0.1, 42) for i in range(4000)])
    assert abs(draws.mean()) < 0.002
    assert abs(draws.std() - 0.1) < 0.002
    # Columns are independent: the cos half and the sin half of one pair too.
    correlation = np.corrcoef(draws.T)
    assert np.abs(correlation - np.eye(32)).max() < 0.08
    assert abs(np.mean(np.abs(draws) > 0.196) - 0.05) < 0.005  # normal tails: |z| > 1.96
