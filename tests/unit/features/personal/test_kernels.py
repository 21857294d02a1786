"""The compiled SGD step of the factor model equals the same formulas in numpy."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.features.personal.kernels import sgd_step


def numpy_step(
    factors: np.ndarray,
    bias: np.ndarray,
    user: np.ndarray,
    index: np.ndarray,
    labels: np.ndarray,
    weights: np.ndarray,
    rate: float,
    l2: float,
) -> np.ndarray:
    """The rule written with numpy on whole arrays: logistic loss, gradients at the values
    before the step, an item listed twice updated twice (``np.add.at``)."""
    rows = factors[index]
    logits = np.clip(rows @ user + bias[index], -30.0, 30.0)
    gradient = weights * (labels - 1.0 / (1.0 + np.exp(-logits)))
    updated = user + rate * (gradient @ rows - l2 * user)
    np.add.at(factors, index, rate * (gradient[:, None] * user - l2 * rows))
    np.add.at(bias, index, rate * gradient)
    return updated


@pytest.mark.parametrize("index", [[3, 0, 7, 1, 5], [2, 2, 4], [6]])
def test_the_compiled_step_is_the_numpy_rule(index: list[int]) -> None:
    rng = np.random.default_rng(len(index))
    factors = rng.normal(0, 0.3, (8, 32)).astype(np.float32)
    bias = rng.normal(0, 0.5, 8).astype(np.float32)
    user = rng.normal(0, 0.3, 32).astype(np.float32)
    positions = np.array(index, dtype=np.int64)
    labels = np.array([1.0] + [0.0] * (len(index) - 1), dtype=np.float32)
    weights = rng.uniform(0.2, 2.0, len(index)).astype(np.float32)
    expected_factors, expected_bias = factors.copy(), bias.copy()
    expected = numpy_step(
        expected_factors, expected_bias, user, positions, labels, weights, 0.1, 0.002
    )
    updated = sgd_step(factors, bias, user, positions, labels, weights, 0.1, 0.002)
    assert updated.dtype == np.float32
    np.testing.assert_allclose(updated, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(factors, expected_factors, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bias, expected_bias, rtol=1e-5, atol=1e-6)
    # Rows not in the step are left as they were.
    untouched = sorted(set(range(8)) - set(index))
    assert np.array_equal(factors[untouched], expected_factors[untouched])


def test_extreme_scores_do_not_overflow() -> None:
    factors = np.full((2, 4), 100.0, dtype=np.float32)
    bias = np.zeros(2, dtype=np.float32)
    user = np.full(4, 100.0, dtype=np.float32)
    index = np.array([0, 1], dtype=np.int64)
    with np.errstate(all="raise"):
        updated = sgd_step(
            factors,
            bias,
            user,
            index,
            np.array([1.0, 0.0], np.float32),
            np.ones(2, np.float32),
            0.1,
            0.0,
        )
    assert np.isfinite(updated).all() and np.isfinite(factors).all()
