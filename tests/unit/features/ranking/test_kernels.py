"""The click model's compiled learning loop is the Python rule, bit for bit."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from pipeline.features.ranking.kernels import distinct_slots
from pipeline.features.ranking.model import MAX_LOGIT, ClickModel, StepBatch

Step = tuple[list[int], bool, float]


def python_steps(
    weights: dict[int, float], sums: dict[int, float], steps: list[Step], rate: float, l2: float
) -> set[int]:
    """AdaGrad over ``steps`` as plain Python (the rule ``ClickModel.learn_indexes`` states),
    in place; returns the indexes a non-zero gradient moved."""
    moved = set()
    for indexes, clicked, weight in steps:
        logit = 0.0
        for i in indexes:
            logit += weights.get(i, 0.0)
        logit = max(-MAX_LOGIT, min(MAX_LOGIT, logit))
        gradient = weight * ((1.0 if clicked else 0.0) - 1.0 / (1.0 + math.exp(-logit)))
        if gradient == 0.0:
            continue
        for i in indexes:
            old = weights.get(i, 0.0)
            total = sums.get(i, 0.0) + gradient * gradient
            sums[i] = total
            weights[i] = old + rate * gradient / math.sqrt(total) - rate * l2 * old
            moved.add(i)
    return moved


def random_steps(rng: random.Random, count: int) -> list[Step]:
    steps = []
    for _ in range(count):
        # A few hundred features, a feature sometimes twice in one observation, some
        # observations with weight 0 (no step), a few with huge weights (clipped logits).
        indexes = [rng.randrange(300) for _ in range(rng.randint(0, 14))]
        weight = rng.choice([0.0, 0.05, 1.0, 1.0, 50.0])
        steps.append((indexes, rng.random() < 0.3, weight))
    return steps


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_learn_many_equals_the_python_rule_exactly(seed: int) -> None:
    rng = random.Random(seed)
    model = ClickModel(n_bits=12, learning_rate=0.3, l2=1e-3)
    start_weights = {i: rng.uniform(-2, 2) for i in range(0, 300, 3)}
    start_sums = {i: rng.uniform(0, 5) for i in range(0, 300, 5)}
    model.set_weights(start_weights)
    model.set_sums(start_sums)
    weights, sums = dict(start_weights), dict(start_sums)
    for _ in range(3):
        steps = random_steps(rng, 400)
        python_steps(weights, sums, steps, 0.3, 1e-3)
        model.learn_many(steps)
        assert model.weights == {i: w for i, w in weights.items()}
    # The drained deltas are exactly what moved, from the values the model started with.
    expected = {
        i: w - start_weights.get(i, 0.0)
        for i, w in weights.items()
        if w != start_weights.get(i, 0.0)
    }
    assert model.drain_deltas() == expected
    expected_sums = {
        i: s - start_sums.get(i, 0.0) for i, s in sums.items() if s != start_sums.get(i, 0.0)
    }
    assert model.drain_sum_deltas() == expected_sums


@pytest.mark.parametrize("seed", [4, 5])
def test_a_batch_learned_on_arrays_is_the_python_rule_exactly(seed: int) -> None:
    """What the ranking agent runs on the values it read from Redis: the distinct indexes
    ascending, each observation's slots, and the features moved with their new values."""
    rng = random.Random(seed)
    model = ClickModel(n_bits=12, learning_rate=0.3, l2=1e-3)
    steps = random_steps(rng, 400)
    batch = StepBatch.of(steps)
    indexes = batch.indexes
    assert indexes == sorted({i for features, _, _ in steps for i in features})
    start_weights = {i: rng.uniform(-2, 2) for i in indexes if rng.random() < 0.5}
    start_sums = {i: rng.uniform(0, 5) for i in start_weights}
    weights = np.array([start_weights.get(i, 0.0) for i in indexes])
    sums = np.array([start_sums.get(i, 0.0) for i in indexes])
    moved = model.learn_batch(batch, weights, sums)
    expected_weights, expected_sums = dict(start_weights), dict(start_sums)
    expected_moved = python_steps(expected_weights, expected_sums, steps, 0.3, 1e-3)
    assert moved.indexes == sorted(expected_moved)
    assert moved.weights == [expected_weights[i] for i in moved.indexes]
    assert moved.sums == [expected_sums[i] for i in moved.indexes]
    assert moved.weights_before == [start_weights.get(i, 0.0) for i in moved.indexes]
    assert moved.sums_before == [start_sums.get(i, 0.0) for i in moved.indexes]
    # The arrays were updated in place; the model's own tables were not touched.
    assert weights.tolist() == [expected_weights.get(i, 0.0) for i in indexes]
    assert model.weights == {}


def test_an_empty_batch_and_empty_observations_change_nothing() -> None:
    model = ClickModel()
    model.learn_many([])
    model.learn_many([([], True, 1.0)])
    assert model.drain_deltas() == {} and model.weights == {}


def test_a_weight_moved_by_its_shrink_alone_is_written() -> None:
    """A gradient too small to grow a large sum still moves the weight (its L2 shrink): the
    feature counts as moved, so the agent writes it (it did not when only sums counted)."""
    model = ClickModel(n_bits=12, learning_rate=0.3, l2=1e-3)
    batch = StepBatch.of([([7], True, 1e-20)])
    weights, sums = np.array([1.0]), np.array([1e30])
    moved = model.learn_batch(batch, weights, sums)
    assert sums[0] == 1e30 and weights[0] < 1.0
    assert moved.indexes == [7] and moved.weights == [weights[0]]


@pytest.mark.parametrize("seed", [6, 7])
def test_distinct_slots_are_numpys_unique_and_leave_the_table_empty(seed: int) -> None:
    rng = np.random.default_rng(seed)
    # Repeats, the table's first and last entries, and an empty batch.
    for flat in (rng.integers(0, 1 << 12, 5000), np.array([4095, 0, 4095, 7, 0]), np.array([])):
        flat = flat.astype(np.int64)
        table = np.full(1 << 12, -1, dtype=np.int32)
        present, slots = distinct_slots(flat, table)
        expected_present, expected_slots = np.unique(flat, return_inverse=True)
        assert present.tolist() == expected_present.tolist()
        assert slots.tolist() == expected_slots.tolist()
        assert (table == -1).all()


def test_distinct_slots_refuse_an_index_outside_the_table() -> None:
    table = np.full(8, -1, dtype=np.int32)
    for bad in (8, -1):
        with pytest.raises(IndexError):
            distinct_slots(np.array([1, bad, 2], dtype=np.int64), table)
        assert (table == -1).all()


def test_a_batch_with_a_slot_table_is_the_sorted_batch() -> None:
    steps = random_steps(random.Random(8), 400)
    sorted_batch = StepBatch.of(steps)
    table_batch = StepBatch.of(steps, np.full(1 << 12, -1, dtype=np.int32))
    for name in ("present", "slots", "offsets", "clicked", "weights"):
        assert getattr(table_batch, name).tolist() == getattr(sorted_batch, name).tolist()
