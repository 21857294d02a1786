"""Compiled inner loops of the click model (numba): a batch's feature indexes, AdaGrad steps
over a batch, and the batch's distinct features.

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


def crc32_table() -> np.ndarray:
    """The byte table of CRC-32 (the reflected polynomial 0xEDB88320 of zlib), int64."""
    table = np.arange(256, dtype=np.int64)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ 0xEDB88320, table >> 1)
    return table


@compiled
def _crc32(blob: np.ndarray, lo: int, hi: int, value: int, table: np.ndarray) -> int:
    """``zlib.crc32(blob[lo:hi], value)``: CRC-32 continued from ``value``."""
    crc = value ^ 0xFFFFFFFF
    for j in range(lo, hi):
        crc = table[(crc ^ blob[j]) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


@compiled
def gather_indexes(
    strings: tuple[np.ndarray, np.ndarray],
    items: tuple[np.ndarray, ...],
    categories: tuple[np.ndarray, ...],
    events: tuple[np.ndarray, ...],
    observations: tuple[np.ndarray, ...],
    leading: np.ndarray,
    bias: int,
    mask: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Every observation's feature indexes, in the order of ``features.features``, flat:
    observation ``o``'s are ``flat[offsets[o]:offsets[o + 1]]``. Returns (flat, offsets).

    - ``strings``: (blob, CRC table); every string below is a ``[lo, hi)`` range of blob.
    - ``items``: per item, its ``item=`` index, string range, and its categories as a range
      of ``categories`` (``first[i]:first[i + 1]``): (index, lo, hi, first).
    - ``categories``: per entry, the ``cat=`` index, string range, and the CRC state after
      ``cat_device={category}|``: (index, lo, hi, device_state).
    - ``events``: per event, the CRC states after ``user_item={user}|`` and
      ``user_cat={user}|``; its context indexes (``context_first[e]:context_first[e + 1]``
      of ``context``); its device's string range (``lo < 0``: none); its observations
      (``observation_first[e]:observation_first[e + 1]``); and its position index (-1:
      none; -2: the ``j``-th of its observations has ``leading[j]``): (user_item, user_cat,
      context_first, context, device_lo, device_hi, observation_first, position).
    - ``observations``: per observation, its item, and the indexes its user's attributes add
      (``first[o]:first[o + 1]`` of ``extra``): (item, first, extra).
    """
    blob, table = strings
    item_index, item_lo, item_hi, item_first = items
    category_index, category_lo, category_hi, device_state = categories
    user_item, user_cat, context_first, context, device_lo, device_hi, first, position = events
    observed_item, extra_first, extra = observations
    count = observed_item.shape[0]
    offsets = np.empty(count + 1, dtype=np.int64)
    offsets[0] = 0
    for e in range(first.shape[0] - 1):
        size = 3 + context_first[e + 1] - context_first[e]
        if position[e] != -1:
            size += 1
        for o in range(first[e], first[e + 1]):
            i = observed_item[o]
            shown = item_first[i + 1] - item_first[i]
            extras = extra_first[o + 1] - extra_first[o]
            offsets[o + 1] = offsets[o] + size + (3 if device_lo[e] >= 0 else 2) * shown + extras
    flat = np.empty(offsets[count], dtype=np.int64)
    for e in range(first.shape[0] - 1):
        for o in range(first[e], first[e + 1]):
            i, k = observed_item[o], offsets[o]
            flat[k] = bias
            flat[k + 1] = item_index[i]
            flat[k + 2] = _crc32(blob, item_lo[i], item_hi[i], user_item[e], table) & mask
            k += 3
            for c in range(item_first[i], item_first[i + 1]):
                flat[k] = category_index[c]
                flat[k + 1] = (
                    _crc32(blob, category_lo[c], category_hi[c], user_cat[e], table) & mask
                )
                k += 2
            for j in range(context_first[e], context_first[e + 1]):
                flat[k] = context[j]
                k += 1
            if device_lo[e] >= 0:
                for c in range(item_first[i], item_first[i + 1]):
                    state = device_state[c]
                    flat[k] = _crc32(blob, device_lo[e], device_hi[e], state, table) & mask
                    k += 1
            if position[e] == -2:
                flat[k] = leading[o - first[e]]
                k += 1
            elif position[e] >= 0:
                flat[k] = position[e]
                k += 1
            for j in range(extra_first[o], extra_first[o + 1]):
                flat[k] = extra[j]
                k += 1
    return flat, offsets


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
    # One impression of one item (category "c", device "d"): the types FeatureIndexer.batch
    # passes, its blob read-only (np.frombuffer of bytes).
    one, zero = np.ones(1, dtype=np.int64), np.zeros(1, dtype=np.int64)
    two = np.array([0, 1], dtype=np.int64)
    gather_indexes(
        (np.frombuffer(b"icd", dtype=np.uint8), crc32_table()),
        (one, zero, one, two),
        (one, one, one + 1, one),
        (one, one, np.array([0, 0], dtype=np.int64), zero, one + 1, one + 2, two, one - 3),
        (zero, np.zeros(2, dtype=np.int64), zero[:0]),
        one,
        0,
        255,
    )
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
