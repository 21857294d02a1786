"""The related items of one item in one compiled pass, ties broken by id as the stores do.

``pipeline.core.blend.rank_related`` and ``blend_related`` rank partners by discounted count
and break ties by id (what Redis does with equal scores). The evaluation asks for the
related items of the user's previous item at every case (every other event of a ratings
log). In numpy steps and a Python sort of the candidates by id, a call cost about 88 µs on a
MovieLens-shaped log (480 partners in three lists). Here the ids' order is an array of
keys kept up as items join the model (:class:`IdOrder`), so the whole ranking (exclusions,
discounts, each relation's depth cut, the blend, the first ``n``) is one compiled loop over
the partner lists where they lie in the arena (``arena.py``): about 16 µs, 38 µs with the
lookups around it. It is written as plain loops (a heap, a selection): numpy's partition
and sorts, compiled, were faster by a few microseconds but took ten seconds to compile.

Compiled with :func:`pipeline.core.compiled.compiled`.
"""

from __future__ import annotations

from bisect import bisect_left

import numpy as np

from pipeline.core.compiled import compiled

# Items joining at once past which the keys are computed anew (a sort of every id) rather
# than each id inserted (a bisection and a move of the sorted ids per id): at least this
# many, and a 64th of the items known (a sort of 100,000 ids costs about as much as 2,000
# insertions).
REBUILD_ABOVE = 32
# Keys of neighbouring ids computed anew lie this far apart: an id joining between two
# takes the middle, so twenty ids can join at one place before the keys are computed anew.
GAP = 1 << 20


class IdOrder:
    """A key per model item that compares as the items' ids do (Python's string order), kept
    up as items join: the model's ``item_ids`` only grow, at the end. Keys, not ranks: an
    id joining takes the middle of its neighbours' keys (ranks would change for every id
    after it, a pass over all of them per id: with 100,000 items in a wide catalog that
    was a tenth of the evaluation)."""

    def __init__(self) -> None:
        self._sorted: list[str] = []
        self._key_of: dict[str, int] = {}
        self._keys = np.zeros(0, dtype=np.int64)
        self._known = 0

    def keys(self, ids: list[str]) -> np.ndarray:
        """The key of each of ``ids`` (a view, valid until the next call)."""
        count = len(ids)
        known = self._known
        if count < known or count - known > max(REBUILD_ABOVE, known // 64):
            self._rebuild(ids, count)
        elif count > known:
            if len(self._keys) < count:
                grown = np.empty(max(2 * len(self._keys), count, 16), dtype=np.int64)
                grown[:known] = self._keys[:known]
                self._keys = grown
            for index in range(known, count):
                self._insert(ids, index)
        self._known = count
        return self._keys[:count]

    def _insert(self, ids: list[str], index: int) -> None:
        """Give ``ids[index]`` the middle key between its neighbours' in id order (all keys
        computed anew when they are next to each other)."""
        item, ordered = ids[index], self._sorted
        place = bisect_left(ordered, item)
        below = self._key_of[ordered[place - 1]] if place else None
        above = self._key_of[ordered[place]] if place < len(ordered) else None
        if below is None:
            below = (above if above is not None else 0) - 2 * GAP
        if above is None:
            above = below + 2 * GAP
        if above - below < 2:
            self._rebuild(ids, index + 1)
            return
        key = (below + above) // 2
        ordered.insert(place, item)
        self._key_of[item] = key
        self._keys[index] = key

    def _rebuild(self, ids: list[str], count: int) -> None:
        """Keys anew for the first ``count`` ids: their places in id order, ``GAP`` apart."""
        order = sorted(range(count), key=ids.__getitem__)
        keys = np.arange(count, dtype=np.int64) * GAP
        if len(self._keys) < count:
            self._keys = np.empty(max(count, 16), dtype=np.int64)
        self._keys[order] = keys
        self._sorted = [ids[index] for index in order]
        self._key_of = dict(zip(self._sorted, keys.tolist(), strict=True))


@compiled
def _worse(score: np.ndarray, rank: np.ndarray, a: int, b: int) -> bool:
    """Whether entry ``a`` comes after entry ``b``: a lower score, or the same and a higher
    rank (ranks are distinct, so two entries are never equal)."""
    return score[a] < score[b] or (score[a] == score[b] and rank[a] > rank[b])


@compiled
def _sift_down(
    score: np.ndarray, rank: np.ndarray, heap: np.ndarray, size: int, entry: int
) -> None:
    """Place ``entry`` at the root of ``heap[:size]`` (the worst entry at the root) and move
    it down to where it belongs."""
    place = 0
    while True:
        child = 2 * place + 1
        if child >= size:
            break
        if child + 1 < size and _worse(score, rank, heap[child + 1], heap[child]):
            child += 1
        if _worse(score, rank, entry, heap[child]):
            break
        heap[place] = heap[child]
        place = child
    heap[place] = entry


@compiled
def first_by_score(score: np.ndarray, rank: np.ndarray, n: int) -> np.ndarray:
    """Positions of the ``n`` highest ``score``, ties by the lower ``rank`` (ranks are
    distinct), best first: the best so far in a heap whose root is the worst of them, so
    most entries are turned away by one comparison; then the heap emptied worst first.
    (Loops rather than numpy's partition and sorts: those took seconds to compile.)"""
    m = score.shape[0]
    n = max(min(n, m), 0)
    heap = np.empty(n, dtype=np.int64)
    size = 0
    for j in range(m):
        if size < n:
            place = size
            size += 1
            while place > 0:
                parent = (place - 1) // 2
                if _worse(score, rank, heap[parent], j):
                    break
                heap[place] = heap[parent]
                place = parent
            heap[place] = j
        elif n and _worse(score, rank, heap[0], j):
            _sift_down(score, rank, heap, size, j)
    ordered = np.empty(size, dtype=np.int64)
    while size:
        size -= 1
        ordered[size] = heap[0]
        if size:
            _sift_down(score, rank, heap, size, heap[size])
    return ordered


@compiled
def _keep_best(
    items: np.ndarray, values: np.ndarray, rank: np.ndarray, first: int, end: int, cut: int
) -> None:
    """Move the best ``cut`` entries of ``[first, end)`` (by value, ties by the lower rank
    of their items), in any order, to ``[first, first + cut)``: a selection (Wirth's),
    linear on average, where ordering them all would cost a sort."""
    order = rank[items[first:end]]
    score = values[first:end]
    keys = np.arange(end - first)
    target = cut - 1
    low, high = 0, end - first - 1
    while low < high:
        pivot = keys[target]
        i, j = low, high
        while True:
            while _worse(score, order, pivot, keys[i]):
                i += 1
            while _worse(score, order, keys[j], pivot):
                j -= 1
            if i <= j:
                keys[i], keys[j] = keys[j], keys[i]
                i += 1
                j -= 1
            if i > j:
                break
        if j < target:
            low = i
        if target < i:
            high = j
    chosen = first + keys[:cut]
    chosen_items = items[chosen]
    chosen_values = values[chosen]
    items[first : first + cut] = chosen_items
    values[first : first + cut] = chosen_values


@compiled
def related_best(
    partner: np.ndarray,
    count: np.ndarray,
    model_of: np.ndarray,
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
    ``sizes`` of the arena's ``partner``, item numbers that ``model_of`` turns into model
    indexes, -1 passed over, and ``count``; list ``l`` discounted by
    ``discounts[signals[l]]``): (model indexes, scores) of the first ``n``, best first, ties
    by ``rank``; items ``excluded`` left out. ``cut < 0``: one list, its scores as they are.
    Else each list's best ``cut`` are scaled by their best and summed per item, the lists
    added in their order (as ``numpy.bincount`` adds them). ``slot_of``: -1 for every item,
    as it is left (scratch space of the sums)."""
    if cut == 0:
        # Each list's best none: nothing to blend (a selection of none has no pivot).
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
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
            item = model_of[partner[slot]]
            if item < 0 or excluded[item]:
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
