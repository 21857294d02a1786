"""Compiled inner loops of the personal engine (numba): the factor model's SGD step, the
totals of the neighbour scores, the best items of a list and the anchors that led to each
served item.

One SGD step of :class:`~pipeline.features.personal.mf.ImplicitMF` touches a user vector and
a handful of item rows of 32 floats: numpy spends most of that step in the overhead of a
dozen calls on tiny arrays (about 60 µs), a compiled loop about 5 µs. The rule is the one
``mf.py`` documents. The neighbour totals add up a few thousand partner counts in a few
dozen lists per for-you list: a dozen numpy steps over them cost more than one loop.
``tests/unit/features/personal/test_kernels.py`` checks each against a transcription of the
same rule in numpy or plain Python.

Compiled with :func:`pipeline.core.compiled.compiled`.
"""

from __future__ import annotations

import numpy as np

from pipeline.core.compiled import compiled


@compiled
def _move_items(
    item_factors: np.ndarray,
    item_bias: np.ndarray,
    user: np.ndarray,
    index: np.ndarray,
    gradient: np.ndarray,
    step: np.float32,
    shrink: np.float32,
) -> None:
    """The item rows' part of an SGD step: every move is computed from the rows before the
    step, then applied (an item listed twice gets both)."""
    n = index.shape[0]
    k = user.shape[0]
    moves = np.empty((n, k), dtype=np.float32)
    for j in range(n):
        row = index[j]
        for d in range(k):
            moves[j, d] = step * (gradient[j] * user[d] - shrink * item_factors[row, d])
    for j in range(n):
        row = index[j]
        for d in range(k):
            item_factors[row, d] += moves[j, d]
        item_bias[row] += step * gradient[j]


@compiled
def sgd_step(
    item_factors: np.ndarray,
    item_bias: np.ndarray,
    user: np.ndarray,
    index: np.ndarray,
    labels: np.ndarray,
    weights: np.ndarray,
    rate: float,
    l2: float,
) -> np.ndarray:
    """One logistic SGD step of ``user`` against the items ``index`` (with ``labels`` 0/1 and
    ``weights``); updates ``item_factors`` and ``item_bias`` in place and returns the user's
    new vector. Every gradient is taken at the values before the step; an item listed twice
    gets both updates."""
    k = user.shape[0]
    n = index.shape[0]
    gradient = np.empty(n, dtype=np.float32)
    for j in range(n):
        row = index[j]
        logit = np.float32(0.0)
        for d in range(k):
            logit += item_factors[row, d] * user[d]
        logit += item_bias[row]
        # Clipped so exp() never overflows.
        logit = min(max(logit, np.float32(-30.0)), np.float32(30.0))
        predicted = np.float32(1.0) / (np.float32(1.0) + np.exp(-logit))
        gradient[j] = weights[j] * (labels[j] - predicted)
    step = np.float32(rate)
    shrink = np.float32(l2)
    updated = np.empty(k, dtype=np.float32)
    for d in range(k):
        total = np.float32(0.0)
        for j in range(n):
            total += gradient[j] * item_factors[index[j], d]
        updated[d] = user[d] + step * (total - shrink * user[d])
    _move_items(item_factors, item_bias, user, index, gradient, step, shrink)
    return updated


@compiled
def neighbour_totals(
    partner: np.ndarray,
    count: np.ndarray,
    model_of: np.ndarray,
    starts: np.ndarray,
    sizes: np.ndarray,
    scales: np.ndarray,
    signals: np.ndarray,
    rows: np.ndarray,
    discounts: tuple[np.ndarray, ...],
    n_items: int,
    n_rows: int,
) -> np.ndarray:
    """The neighbour score of every item (``NeighbourIndex.scores``): list ``l`` is the
    ``sizes[l]`` entries from ``starts[l]`` of ``partner`` (item numbers, which
    ``model_of`` turns into model indexes; -1: not in the model, passed over) and
    ``count`` (the lists of a co-occurrence arena, read where they lie). A list's counts
    are divided by their item's discount (``discounts[signals[l]]``), scaled so that its
    best counts ``scales[l]`` (a best of 0 or less counts as 1), and added to its
    relation's row ``rows[l]``; the rows are then summed in order. Every sum runs in the
    order numpy's bincount and row sum take over the lists joined, so the totals are the
    same."""
    totals = np.zeros((n_rows, n_items))
    longest = 0
    for number in range(sizes.shape[0]):
        longest = max(longest, sizes[number])
    values = np.empty(longest)
    items = np.empty(longest, dtype=np.int64)
    for number in range(sizes.shape[0]):
        begin = starts[number]
        discount = discounts[signals[number]]
        best = -np.inf
        length = 0
        for k in range(sizes[number]):
            item = model_of[partner[begin + k]]
            if item < 0:
                continue
            value = count[begin + k] / discount[item]
            items[length] = item
            values[length] = value
            length += 1
            best = max(best, value)
        if best <= 0:
            best = 1.0
        factor = scales[number] / best
        row = rows[number]
        for k in range(length):
            totals[row, items[k]] += values[k] * factor
    total = totals[0].copy()
    for row in range(1, n_rows):
        total += totals[row]
    return total


@compiled
def first_anchors(
    partner: np.ndarray,
    model_of: np.ndarray,
    starts: np.ndarray,
    sizes: np.ndarray,
    ranks: np.ndarray,
    served: np.ndarray,
    n_anchors: int,
    limit: int,
) -> np.ndarray:
    """For each item of ``served`` (model indexes), the ranks (ascending) of the first
    ``limit`` anchors among whose partners it is (the ``sizes[l]`` entries of ``partner``
    from ``starts[l]``, item numbers that ``model_of`` turns into model indexes, are
    partners of the anchor ranked ``ranks[l]``), -1 past the last: row ``s`` belongs to
    ``served[s]``."""
    size = 0
    for s in range(served.shape[0]):
        size = max(size, served[s] + 1)
    position = np.full(size, -1, dtype=np.int64)
    for s in range(served.shape[0]):
        position[served[s]] = s
    met = np.zeros((served.shape[0], n_anchors), dtype=np.bool_)
    for number in range(sizes.shape[0]):
        begin = starts[number]
        for j in range(begin, begin + sizes[number]):
            item = model_of[partner[j]]
            if 0 <= item < size:
                slot = position[item]
                if slot >= 0:
                    met[slot, ranks[number]] = True
    first = np.full((served.shape[0], limit), -1, dtype=np.int64)
    for s in range(served.shape[0]):
        found = 0
        for rank in range(n_anchors):
            if met[s, rank] and found < limit:
                first[s, found] = rank
                found += 1
    return first


@compiled
def top_indexes(scores: np.ndarray, n: int) -> np.ndarray:
    """Indexes of the ``n`` highest ``scores``, best first, ties by index; -inf scores
    (excluded items) never, so fewer when fewer are finite or above.

    One pass keeps the best so far in order: most items are turned away by one comparison
    with the worst kept, so a list of a catalog of 17,000 items costs about a tenth of a
    partition of the whole vector. Scores that keep rising along the vector would make it
    move the kept items for most of them: after ``8 n + 256`` insertions the partition
    answers instead (the same items)."""
    size = scores.shape[0]
    take = min(n, size)
    if take <= 0:
        return np.empty(0, dtype=np.int64)
    kept_index = np.empty(take, dtype=np.int64)
    kept_score = np.empty(take, dtype=scores.dtype)
    kept = 0
    budget = 8 * take + 256
    for i in range(size):
        value = scores[i]
        # -inf: excluded. NaN fails every comparison and is never kept.
        if not value > -np.inf:
            continue
        if kept == take:
            # An equal score with a later index ranks below the worst kept.
            if value <= kept_score[kept - 1]:
                continue
            at = kept - 1
        else:
            at = kept
            kept += 1
        budget -= 1
        if budget < 0:
            # One partition finds the take-th best value; only the items at or above it
            # are sorted, stably in index order so that equal scores stay by index.
            negated = -scores
            cut = np.partition(negated, take - 1)[take - 1]
            candidates = np.flatnonzero(negated <= cut)
            keys = negated[candidates]
            order = np.argsort(keys, kind="mergesort")[:take]
            best = candidates[order]
            return best[keys[order] != np.inf]
        while at > 0 and kept_score[at - 1] < value:
            kept_score[at] = kept_score[at - 1]
            kept_index[at] = kept_index[at - 1]
            at -= 1
        kept_score[at] = value
        kept_index[at] = i
    return kept_index[:kept].copy()


@compiled
def normal_from_words(words: np.ndarray, n: int, std: float) -> np.ndarray:
    """``n`` normal(0, ``std``) draws (float32) by Box-Muller from ``words``, an even
    number (at least ``n``) of uniform 32-bit values: the first half give the radii, the
    second the angles; draw ``j`` of the first half is ``radius * cos``, the rest
    ``radius * sin``."""
    pairs = words.shape[0] // 2
    out = np.empty(n, dtype=np.float32)
    for j in range(pairs):
        # Uniform in (0, 1): never 0, so the logarithm is finite.
        radius = np.sqrt(-2.0 * np.log((words[j] + 0.5) / 4294967296.0))
        angle = 2.0 * np.pi * (words[pairs + j] + 0.5) / 4294967296.0
        out[j] = std * radius * np.cos(angle)
        if pairs + j < n:
            out[pairs + j] = std * radius * np.sin(angle)
    return out


@compiled
def content_sgd_step(
    item_factors: np.ndarray,
    item_bias: np.ndarray,
    user: np.ndarray,
    index: np.ndarray,
    labels: np.ndarray,
    weights: np.ndarray,
    rate: float,
    l2: float,
    content: np.ndarray,
    word_factors: np.ndarray,
    word_bias: np.ndarray,
    word_rate: float,
) -> np.ndarray:
    """:func:`sgd_step` of a factor model whose items with text are their own row plus
    their words' (``words.py``): item ``r`` counts as ``item_factors[r] + content[r] @
    word_factors`` and ``item_bias[r] + content[r] @ word_bias`` (``content`` rows past its
    end, and rows of zeros, have no words). The item rows move as in :func:`sgd_step`; each
    word row the step's items hold moves by ``word_rate`` times its gradient (summed over
    the items, with one L2 shrink). Every gradient is taken at the values before the step.
    Kept apart from :func:`sgd_step` (not that step with no words): its four more
    arguments cost the plain step about a fifth of its time (measured, 4 -> 5 µs)."""
    k = user.shape[0]
    n = index.shape[0]
    dim = word_factors.shape[0]
    held = content.shape[0]
    vectors = np.empty((n, k), dtype=np.float32)
    gradient = np.empty(n, dtype=np.float32)
    for j in range(n):
        row = index[j]
        extra = np.float32(0.0)
        for d in range(k):
            vectors[j, d] = item_factors[row, d]
        if row < held:
            for b in range(dim):
                x = content[row, b]
                if x != 0:
                    extra += x * word_bias[b]
                    for d in range(k):
                        vectors[j, d] += x * word_factors[b, d]
        logit = np.float32(0.0)
        for d in range(k):
            logit += vectors[j, d] * user[d]
        logit += item_bias[row] + extra
        logit = min(max(logit, np.float32(-30.0)), np.float32(30.0))
        predicted = np.float32(1.0) / (np.float32(1.0) + np.exp(-logit))
        gradient[j] = weights[j] * (labels[j] - predicted)
    step = np.float32(rate)
    shrink = np.float32(l2)
    updated = np.empty(k, dtype=np.float32)
    for d in range(k):
        total = np.float32(0.0)
        for j in range(n):
            total += gradient[j] * vectors[j, d]
        updated[d] = user[d] + step * (total - shrink * user[d])
    sums = np.zeros((dim, k + 1), dtype=np.float32)
    touched = np.zeros(dim, dtype=np.bool_)
    for j in range(n):
        row = index[j]
        if row < held:
            for b in range(dim):
                x = content[row, b]
                if x != 0:
                    touched[b] = True
                    sums[b, 0] += gradient[j] * x
                    for d in range(k):
                        sums[b, d + 1] += gradient[j] * x * user[d]
    _move_items(item_factors, item_bias, user, index, gradient, step, shrink)
    word_step = np.float32(word_rate)
    for b in range(dim):
        if touched[b]:
            word_bias[b] += word_step * sums[b, 0]
            for d in range(k):
                word_factors[b, d] += word_step * (sums[b, d + 1] - shrink * word_factors[b, d])
    return updated


@compiled
def content_rows(
    rows: np.ndarray,
    columns: np.ndarray,
    values: np.ndarray,
    word_factors: np.ndarray,
    word_bias: np.ndarray,
    begin: int,
    end: int,
    factors: np.ndarray,
    bias: np.ndarray,
) -> None:
    """The words' part of items ``begin`` to ``end`` (``content_sgd_step``):
    ``factors[i] = content[i] @ word_factors`` and ``bias[i] = content[i] @ word_bias``,
    where the content's non-zero weights are given as ``values`` at (``rows``,
    ``columns``), sorted by row (what ``numpy.nonzero`` gives); items without any are
    zeros."""
    k = word_factors.shape[1]
    for i in range(begin, end):
        bias[i] = 0.0
        for d in range(k):
            factors[i, d] = 0.0
    first = np.searchsorted(rows, begin)
    for entry in range(first, rows.shape[0]):
        i = rows[entry]
        if i >= end:
            break
        x = values[entry]
        bucket = columns[entry]
        bias[i] += x * word_bias[bucket]
        for d in range(k):
            factors[i, d] += x * word_factors[bucket, d]
