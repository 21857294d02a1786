"""The related items of one item in one compiled pass, ties broken by id as the stores do.

``pipeline.core.blend.rank_related`` and ``blend_related`` rank partners by discounted count
and break ties by id (what Redis does with equal scores). The evaluation asks for the
related items of the user's previous item at every case (every other event of a ratings
log). In numpy steps and a Python sort of the candidates by id, a call cost about 88 µs on a
MovieLens-shaped log (480 partners in three lists). Here the ids' order is an array of
ranks kept up as items join the model (:class:`IdOrder`), so the whole ranking (exclusions,
discounts, each relation's depth cut, the blend, the first ``n``) is one compiled loop over
the partner lists where they lie in the arena (``arena.py``): about 14 µs, 33 µs with the
lookups around it.

Compiled with :func:`pipeline.core.compiled.compiled`.
"""

from __future__ import annotations

from bisect import bisect_left

import numpy as np

from pipeline.core.compiled import compiled

# Items joining at once past which the ranks are computed anew (a sort of every id) rather
# than each id inserted (a pass over the ranks per id).
REBUILD_ABOVE = 32


class IdOrder:
    """Each model item's rank in the order of the ids (Python's string order), kept up as
    items join: the model's ``item_ids`` only grow, at the end."""

    def __init__(self) -> None:
        self._sorted: list[str] = []
        self._rank = np.zeros(0, dtype=np.int64)
        self._known = 0

    def ranks(self, ids: list[str]) -> np.ndarray:
        """The rank of each of ``ids`` (a view, valid until the next call)."""
        count = len(ids)
        known = self._known
        if count - known > REBUILD_ABOVE or count < known:
            order = sorted(range(count), key=ids.__getitem__)
            self._rank = np.empty(max(count, 16), dtype=np.int64)
            self._rank[order] = np.arange(count)
            self._sorted = [ids[index] for index in order]
        elif count > known:
            if len(self._rank) < count:
                grown = np.empty(max(2 * len(self._rank), count, 16), dtype=np.int64)
                grown[:known] = self._rank[:known]
                self._rank = grown
            for index in range(known, count):
                item = ids[index]
                place = bisect_left(self._sorted, item)
                self._sorted.insert(place, item)
                held = self._rank[:index]
                held[held >= place] += 1
                self._rank[index] = place
        self._known = count
        return self._rank[:count]


@compiled
def first_by_score(score: np.ndarray, rank: np.ndarray, n: int) -> np.ndarray:
    """Positions of the ``n`` highest ``score``, ties by the lower ``rank`` (ranks are
    distinct), best first. Few of many: one pass keeps the best so far in order; else two
    stable sorts."""
    m = score.shape[0]
    n = min(n, m)
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    if n * 8 >= m:
        by_rank = np.argsort(rank, kind="mergesort")
        by_score = np.argsort(-score[by_rank], kind="mergesort")
        return by_rank[by_score][:n]
    kept = np.empty(n, dtype=np.int64)
    held = 0
    for j in range(m):
        value = score[j]
        place = held
        if held == n:
            worst = kept[n - 1]
            if value < score[worst] or (value == score[worst] and rank[j] > rank[worst]):
                continue
            place = n - 1
        else:
            held += 1
        while place > 0:
            before = kept[place - 1]
            if score[before] > value or (score[before] == value and rank[before] < rank[j]):
                break
            kept[place] = before
            place -= 1
        kept[place] = j
    return kept


@compiled
def _keep_best(
    items: np.ndarray, values: np.ndarray, rank: np.ndarray, first: int, end: int, cut: int
) -> None:
    """Move the best ``cut`` entries of ``[first, end)`` (by value, ties by the lower rank)
    to ``[first, first + cut)``, in any order: a partition finds the cut's value, and only
    the entries tied at it are sorted, by rank."""
    span = values[first:end]
    threshold = np.partition(span, span.shape[0] - cut)[span.shape[0] - cut]
    above = 0
    ties = 0
    for j in range(first, end):
        if values[j] > threshold:
            above += 1
        elif values[j] == threshold:
            ties += 1
    tied = np.empty(ties, dtype=np.int64)
    ties = 0
    for j in range(first, end):
        if values[j] == threshold:
            tied[ties] = j
            ties += 1
    tied = tied[np.argsort(rank[items[tied]])][: cut - above]
    chosen_items = np.empty(cut, dtype=np.int64)
    chosen_values = np.empty(cut, dtype=np.float64)
    placed = 0
    for j in range(first, end):
        if values[j] > threshold:
            chosen_items[placed] = items[j]
            chosen_values[placed] = values[j]
            placed += 1
    for position in tied:
        chosen_items[placed] = items[position]
        chosen_values[placed] = values[position]
        placed += 1
    items[first : first + cut] = chosen_items
    values[first : first + cut] = chosen_values


@compiled
def related_best(
    partner: np.ndarray,
    count: np.ndarray,
    starts: np.ndarray,
    sizes: np.ndarray,
    signals: np.ndarray,
    discounts: tuple[np.ndarray, ...],
    excluded: np.ndarray,
    rank: np.ndarray,
    slot_of: np.ndarray,
    cut: int,
    n: int,
) -> tuple[np.ndarray, np.ndarray]:
    """``blend_related`` of ``rank_related`` over partner lists (blocks ``starts``,
    ``sizes`` of the arena's ``partner`` and ``count``; list ``l`` discounted by
    ``discounts[signals[l]]``): (model indexes, scores) of the first ``n``, best first, ties
    by ``rank``; items ``excluded`` left out. ``cut < 0``: one list, its scores as they are.
    Else each list's best ``cut`` are scaled by their best and summed per item, the lists
    added in their order (as ``numpy.bincount`` adds them). ``slot_of``: -1 for every item,
    as it is left (scratch space of the sums)."""
    total = 0
    for lst in range(starts.shape[0]):
        total += sizes[lst]
    items = np.empty(total, dtype=np.int64)
    values = np.empty(total, dtype=np.float64)
    kept = 0
    for lst in range(starts.shape[0]):
        discount = discounts[signals[lst]]
        first = kept
        for slot in range(starts[lst], starts[lst] + sizes[lst]):
            item = partner[slot]
            if excluded[item]:
                continue
            items[kept] = item
            values[kept] = count[slot] / discount[item]
            kept += 1
        if cut < 0 or kept == first:
            continue
        if kept - first > cut:
            _keep_best(items, values, rank, first, kept, cut)
            kept = first + cut
        best = values[first:kept].max()
        if best <= 0:
            best = 1.0
        for j in range(first, kept):
            values[j] = values[j] / best
    items = items[:kept]
    values = values[:kept]
    if cut >= 0 and kept:
        # Summed per item in the lists' order; the first entry of an item is its sum so far.
        distinct = 0
        for j in range(kept):
            item = items[j]
            held = slot_of[item]
            if held < 0:
                slot_of[item] = distinct
                items[distinct] = item
                values[distinct] = values[j]
                distinct += 1
            else:
                values[held] += values[j]
        items = items[:distinct]
        values = values[:distinct]
        for j in range(distinct):
            slot_of[items[j]] = -1
    chosen = first_by_score(values, rank[items], n)
    return items[chosen], values[chosen]
