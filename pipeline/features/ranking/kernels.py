"""Compiled inner loops of the click model (numba): AdaGrad steps over a batch, and the
batch's distinct features.

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


@compiled
def distinct_slots(flat: np.ndarray, table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(flat, return_inverse=True)`` in one pass over ``flat`` instead of a sort
    of it (a batch holds ten times more feature occurrences than distinct features): each
    value's slot is looked up in ``table`` (one entry per possible value, all -1), then
    only the distinct values are sorted. ``table`` is all -1 again on return. Every value
    must be in ``[0, len(table))``: :class:`IndexError` otherwise, before anything changed."""
    size = table.shape[0]
    for j in range(flat.shape[0]):
        if flat[j] < 0 or flat[j] >= size:
            raise IndexError("a feature index is outside the slot table")
    slots = np.empty(flat.shape[0], dtype=np.int64)
    seen = np.empty(flat.shape[0], dtype=np.int64)
    count = 0
    for j in range(flat.shape[0]):
        value = flat[j]
        slot = table[value]
        if slot < 0:
            slot = count
            table[value] = slot
            seen[count] = value
            count += 1
        slots[j] = slot
    # First-seen slots -> ascending ones, as np.unique numbers them.
    order = np.argsort(seen[:count])
    rank = np.empty(count, dtype=np.int64)
    present = np.empty(count, dtype=np.int64)
    for k in range(count):
        rank[order[k]] = k
        present[k] = seen[order[k]]
        table[seen[k]] = -1
    for j in range(slots.shape[0]):
        slots[j] = rank[slots[j]]
    return present, slots


def load_kernels() -> None:
    """Load the kernels (numba compiles them, or loads them from their cache, on first
    use) by running each once on throwaway arrays of the types the agent passes."""
    distinct_slots(np.arange(2, dtype=np.int64), np.full(4, -1, dtype=np.int32))
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
