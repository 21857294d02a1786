"""Related-item partners of a user's recent items, scored for every item in one pass.

The for-you blend adds, for each recent item (an anchor), the popularity-discounted
co-occurrence counts of its partners, scaled so that the anchor's best partner counts 1, to
the score of every item. The counts' own lists (``pipeline.features.related.counts``, one
arena of item numbers) are read where they lie: this index keeps the translation from the
counts' item numbers to the factor model's indexes (-1 for items the model does not know,
which the kernels pass over), and the popularity counters (with their discounts) as vectors
in the model's order. Scoring all of a user's anchors, in every relation at once, is then
one compiled pass over the lists: its cost grows with the partners of ten items, not with
the user's history or the catalog. The evaluation's related items of one item come from the
same lists.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from pipeline.core.feedback import SIGNALS
from pipeline.features.personal.kernels import first_anchors, neighbour_totals
from pipeline.features.personal.mf import ImplicitMF
from pipeline.features.personal.ordered import IdOrder, related_best
from pipeline.features.related.model import DISCOUNT_BY, RELATIONS, CoOccurrence


class Attribution:
    """Which anchors have which items as partners, for the few items a list shows: the
    partner lists the scoring went through (where they lie in the arena, with their
    anchors' ranks). Ask before the engine learns more: learning changes the lists."""

    __slots__ = ("anchors", "model_of", "partner", "ranks", "sizes", "starts")

    def __init__(
        self,
        anchors: list[str],
        partner: np.ndarray,
        model_of: np.ndarray,
        starts: np.ndarray,
        sizes: np.ndarray,
        ranks: np.ndarray,
    ) -> None:
        self.anchors = anchors
        self.partner = partner
        self.model_of = model_of
        self.starts = starts
        self.sizes = sizes
        self.ranks = ranks

    def first_ranks(self, items: np.ndarray, limit: int) -> list[tuple[int, ...]]:
        """For each model index of ``items``, the ranks (ascending: most recent first) of
        the first ``limit`` anchors it is a partner of, -1 past the last."""
        if not len(self.sizes) or not len(items):
            return [(-1,) * limit] * len(items)
        served = np.asarray(items, dtype=np.int64)
        first = first_anchors(
            self.partner,
            self.model_of,
            self.starts,
            self.sizes,
            self.ranks,
            served,
            len(self.anchors),
            limit,
        )
        return list(map(tuple, first.tolist()))


class NeighbourIndex:
    """The co-occurrence lists seen in the factor model's item indexes, and the popularity
    vectors."""

    def __init__(self, cooc: CoOccurrence, model: ImplicitMF, discount: float) -> None:
        self.cooc = cooc
        self.model = model
        self.discount = discount
        self._popularity: dict[str, np.ndarray] = {signal: np.zeros(0) for signal in SIGNALS}
        # (popularity + 1) ** discount of the same entries, kept with them: the discount of
        # thousands of partners per list is then a gather, not thousands of powers. Each
        # entry is Python's power of one count, as the counts' rule computes it.
        self._discount: dict[str, np.ndarray] = {signal: np.ones(0) for signal in SIGNALS}
        # Model items whose popularity entries have been copied from the counts so far;
        # entries past it are filled when asked for (items join the model after their count).
        self._synced: dict[str, int] = dict.fromkeys(SIGNALS, 0)
        # Each model item's key in id order: ties of related items go by id.
        self._id_order = IdOrder()
        # -1 per model item: the related items' scratch space (``ordered.related_best``).
        self._slots = np.full(0, -1, dtype=np.int64)
        # The counts' item number -> model index (-1: not in the model), and how many item
        # numbers and model items it has taken in (both only grow).
        self._model_of = np.full(0, -1, dtype=np.int64)
        self._numbered = 0
        self._modelled = 0

    def model_indexes(self) -> np.ndarray:
        """The counts' item number -> the model's index of the item (-1: not in the model),
        brought up to the items numbered or modelled since the last call."""
        lists = self.cooc.lists
        # The pairs waiting counted first: callers read the lists (a count may move them).
        lists.flush()
        numbered, modelled = len(lists.ids), len(self.model.item_ids)
        if numbered == self._numbered and modelled == self._modelled:
            return self._model_of
        if len(self._model_of) < numbered:
            grown = np.full(max(numbered, 2 * len(self._model_of)), -1, dtype=np.int64)
            grown[: self._numbered] = self._model_of[: self._numbered]
            self._model_of = grown
        model_of = self._model_of
        index_of, number_of = self.model.item_index, lists.number
        for number in range(self._numbered, numbered):
            model_of[number] = index_of.get(lists.ids[number], -1)
        ids = self.model.item_ids
        for index in range(self._modelled, modelled):
            found = number_of.get(ids[index])
            if found is not None:
                model_of[found] = index
        self._numbered, self._modelled = numbered, modelled
        return model_of

    def partners(self, relation: str, anchor: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(model indexes, counts) of an anchor's partners the model knows, or None when it
        has none (copies)."""
        lists = self.cooc.lists
        row = lists.row(relation, anchor)
        if row is None:
            return None
        numbers, counts = lists.arena.view(row)
        indexes = self.model_indexes()[numbers]
        known = indexes >= 0
        return (indexes[known], counts[known]) if known.any() else None

    # --- scoring ------------------------------------------------------------------------------
    def scores(
        self,
        anchors: list[str],
        weights: list[float],
        n_items: int,
        relation_weights: Mapping[str, float],
    ) -> tuple[np.ndarray, Attribution]:
        """The neighbour score of every item: for each anchor and relation, the partners'
        discounted counts divided by the anchor's best, times the anchor's weight and the
        relation's, summed; and what :meth:`Attribution.first_ranks` needs to say which
        anchors led to an item. The lists are read where they lie in the arena and summed
        in one compiled pass (``kernels.neighbour_totals``), so the cost grows with the
        partners of the user's recent items, not with their history or the catalog."""
        lists = self.cooc.lists
        arena = lists.arena
        model_of = self.model_indexes()
        # The relations in use, each with its own row of the totals (summed in this order).
        used = [r for r in RELATIONS if relation_weights.get(r, 0.0) > 0]
        starts, sizes, relation_rows, ranks = lists.held(used, anchors)
        attribution = Attribution(anchors, arena.partner, model_of, starts, sizes, ranks)
        if not len(starts):
            return np.zeros(n_items), attribution
        weight_of = np.asarray(weights, dtype=np.float64)
        relation_weight = np.array([relation_weights[r] for r in used], dtype=np.float64)
        signal_of = np.array([SIGNALS.index(DISCOUNT_BY[r]) for r in used], dtype=np.int64)
        total = neighbour_totals(
            arena.partner,
            arena.count,
            model_of,
            starts,
            sizes,
            weight_of[ranks] * relation_weight[relation_rows],
            signal_of[relation_rows],
            relation_rows,
            tuple(self.discount_vector(signal) for signal in SIGNALS),
            n_items,
            len(used),
        )
        return total, attribution

    # --- related items of one item ------------------------------------------------------------
    def related(
        self, anchor: str, relations: list[str], n: int, depth: int, exclude: Iterable[str]
    ) -> list[tuple[str, float, str]]:
        """What ``blend_related`` makes of ``rank_related`` (``pipeline.core.blend``) over the
        anchor's partners, to the same items, scores and order: each relation's partners
        outside ``exclude`` (and other than the anchor) by discounted count, its best
        ``depth`` (ties by id), then one relation's first ``n``, or several blended (each
        scaled by its best, summed in relation order; label "blend"). One compiled pass
        over the lists (``ordered.related_best``) instead of a Python sort of every partner
        list: the evaluation asks this for every case. Asks ``0 <= n <= depth``; partners
        the factor model does not know are passed over (in the evaluation, every item of a
        pair has been learned)."""
        # First: it counts the pairs waiting, which may move the arena's arrays.
        model_of = self.model_indexes()
        ids = self.model.item_ids
        index_of = self.model.item_index
        excluded = np.zeros(len(ids), dtype=bool)
        # A heavy rater's exclusions are a thousand items: looked up by map (a C loop).
        excluded[[index for index in map(index_of.get, exclude) if index is not None]] = True
        if anchor in index_of:
            excluded[index_of[anchor]] = True
        counts = self.cooc.lists
        rows: list[int] = []
        signals: list[int] = []
        for relation in relations:
            row = counts.row(relation, anchor)
            if row is not None:
                rows.append(row)
                signals.append(SIGNALS.index(DISCOUNT_BY[relation]))
        if not rows:
            return []
        arena = counts.arena
        # One relation's first n are its ranking's first n: no depth cut, no scaling.
        cut = depth if len(relations) > 1 else -1
        if len(self._slots) < len(ids):
            self._slots = np.full(max(len(ids), 2 * len(self._slots)), -1, dtype=np.int64)
        index, score = related_best(
            arena.partner,
            arena.count,
            model_of,
            arena.start[rows],
            arena.size[rows],
            np.asarray(signals, dtype=np.int64),
            tuple(self.discount_vector(signal) for signal in SIGNALS),
            excluded,
            self._id_order.keys(ids),
            self._slots,
            cut,
            n,
        )
        label = relations[0] if cut < 0 else "blend"
        return [
            (ids[item], value, label)
            for item, value in zip(index.tolist(), score.tolist(), strict=True)
        ]

    # --- popularity, aligned with the model's item indexes --------------------------------------
    def popularity_vector(self, signal: str) -> np.ndarray:
        """Popularity counts aligned with the model's item indexes (grown on demand)."""
        self._sync(signal)
        return self._popularity[signal]

    def discount_vector(self, signal: str) -> np.ndarray:
        """``(popularity + 1) ** discount`` of the same entries: what a partner's count is
        divided by."""
        self._sync(signal)
        return self._discount[signal]

    def _sync(self, signal: str) -> None:
        """Copy the counts of the items that joined the model since the last call."""
        count = len(self.model.item_ids)
        synced = self._synced[signal]
        if synced >= count:
            return
        vector, discount = self._popularity[signal], self._discount[signal]
        if len(vector) < count:
            size = max(count, 2 * len(vector))
            vector = self._popularity[signal] = _grown(vector, synced, size, 0.0)
            discount = self._discount[signal] = _grown(discount, synced, size, 1.0)
        source = self.cooc.popularity[signal]
        ids = self.model.item_ids
        counts = [source.get(ids[index], 0.0) for index in range(synced, count)]
        vector[synced:count] = counts
        discount[synced:count] = [(value + 1.0) ** self.discount for value in counts]
        self._synced[signal] = count

    def count_popularity(self, item_id: str, signal: str, amount: float = 1.0) -> None:
        """One positive event of ``signal`` for ``item_id`` (dict and aligned vector)."""
        self.cooc.count_popularity(item_id, signal, amount)
        index = self.model.item_index.get(item_id)
        if index is not None and index < self._synced[signal]:
            self._set(signal, index, self.cooc.popularity[signal][item_id])

    def load_popularity(self, signal: str, counts: dict[str, float]) -> None:
        """Counts read from the store replace the ones held (the vectors' entries too)."""
        self.cooc.popularity[signal].update(counts)
        synced = self._synced[signal]
        index_of = self.model.item_index
        for item_id, value in counts.items():
            index = index_of.get(item_id)
            if index is not None and index < synced:
                self._set(signal, index, value)

    def _set(self, signal: str, index: int, value: float) -> None:
        self._popularity[signal][index] = value
        self._discount[signal][index] = (value + 1.0) ** self.discount


def _grown(vector: np.ndarray, kept: int, size: int, fill: float) -> np.ndarray:
    """A copy of ``vector``'s first ``kept`` entries, ``size`` long, the rest ``fill``."""
    grown = np.full(size, fill)
    grown[:kept] = vector[:kept]
    return grown
