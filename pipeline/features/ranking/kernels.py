"""Compiled inner loop of the click model (numba): AdaGrad steps over a batch.

The ranking agent learns a dozen hashed features per shown item, one observation after the
other; in Python that loop was most of the agent's time. Here it runs over the batch's
features gathered into two dense arrays (weights and sums, one slot per distinct feature),
with the exact arithmetic of :meth:`ClickModel.learn_indexes` in the same order
(``tests/unit/features/ranking/test_kernels.py`` checks equality with the Python rule).
"""

from __future__ import annotations

import math

import numpy as np

from pipeline.core.compiled import compiled


@compiled
def adagrad_steps(
    weights: np.ndarray,
    sums: np.ndarray,
    features: np.ndarray,
    offsets: np.ndarray,
    clicked: np.ndarray,
    observation_weights: np.ndarray,
    rate: float,
    shrink: float,
    max_logit: float,
) -> None:
    """Observation ``o`` has the features ``features[offsets[o]:offsets[o + 1]]`` (slots of
    ``weights`` and ``sums``), label ``clicked[o]`` and weight ``observation_weights[o]``.
    In order, each: the logit (sum of its weights, clipped to ``max_logit``), the gradient
    ``weight * (clicked - sigmoid)``, then per feature ``sum += gradient**2`` and
    ``w = w + rate * gradient / sqrt(sum) - shrink * w``. Updates in place."""
    for o in range(offsets.shape[0] - 1):
        start, end = offsets[o], offsets[o + 1]
        logit = 0.0
        for j in range(start, end):
            logit += weights[features[j]]
        if logit > max_logit:
            logit = max_logit
        elif logit < -max_logit:
            logit = -max_logit
        gradient = observation_weights[o] * (clicked[o] - 1.0 / (1.0 + math.exp(-logit)))
        if gradient == 0.0:
            continue
        squared = gradient * gradient
        move = rate * gradient
        for j in range(start, end):
            slot = features[j]
            old = weights[slot]
            total = sums[slot] + squared
            sums[slot] = total
            weights[slot] = old + move / math.sqrt(total) - shrink * old


def load_kernels() -> None:
    """Load :func:`adagrad_steps` (numba compiles it, or loads it from its cache, on first
    use) by stepping one observation on throwaway arrays of the types the agent passes."""
    adagrad_steps(
        np.zeros(2),
        np.zeros(2),
        np.arange(2, dtype=np.int64),
        np.array([0, 2], dtype=np.int64),
        np.ones(1),
        np.ones(1),
        0.1,
        0.0,
        10.0,
    )
