"""Related-item partners of a user's recent items, scored for every item in one pass.

The for-you blend adds, for each recent item (an anchor), the popularity-discounted
co-occurrence counts of its partners, scaled so that the anchor's best partner counts 1, to
the score of every item. This index keeps each anchor's partners as a list of model indexes
and counts in one arena (``arena.py``), kept up with the counts as pairs are counted (a
worker's once per batch, from the batch's sums) by one compiled call, never rebuilt by a
Python sort per call; and the popularity counters (with their discounts) as vectors in the
model's order. Scoring all of a user's anchors, in every relation at once, is then one
compiled pass over the lists where they lie: its cost grows with the partners of ten items,
not with the user's history or the catalog. The evaluation's related items of one item come
from the same lists.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from pipeline.core.feedback import SIGNALS
from pipeline.features.personal.arena import PartnerArena
from pipeline.features.personal.kernels import first_anchors, neighbour_totals
from pipeline.features.personal.mf import ImplicitMF
from pipeline.features.personal.ordered import IdOrder, related_best
from pipeline.features.related.model import DISCOUNT_BY, RELATIONS, CoOccurrence, Pair, PairCounts

# Entries followed that wait at most before they are set (:meth:`NeighbourIndex._follow`).
MAX_PENDING = 65_536


class Attribution:
    """Which anchors have which items as partners, for the few items a list shows: the
    partner lists the scoring went through (where they lie in the arena, with their
    anchors' ranks). Ask before the engine learns more: learning changes the lists."""

    __slots__ = ("anchors", "partner", "ranks", "sizes", "starts")

    def __init__(
        self,
        anchors: list[str],
        partner: np.ndarray,
        starts: np.ndarray,
        sizes: np.ndarray,
        ranks: np.ndarray,
    ) -> None:
        self.anchors = anchors
        self.partner = partner
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
            self.partner, self.starts, self.sizes, self.ranks, served, len(self.anchors), limit
        )
        return list(map(tuple, first.tolist()))


class NeighbourIndex:
    """Partner lists per (relation, anchor), built from the co-occurrence counts on first
    use and then kept in step with them by :meth:`add_pairs`."""

    def __init__(self, cooc: CoOccurrence, model: ImplicitMF, discount: float) -> None:
        self.cooc = cooc
        self.model = model
        self.discount = discount
        self.arena = PartnerArena()
        # Relation -> anchor -> its list's row in the arena (built on first use).
        self._rows: dict[str, dict[str, int]] = {r: {} for r in RELATIONS}
        self._popularity: dict[str, np.ndarray] = {signal: np.zeros(0) for signal in SIGNALS}
        # (popularity + 1) ** discount of the same entries, kept with them: the discount of
        # thousands of partners per list is then a gather, not thousands of powers. Each
        # entry is Python's power of one count, as the counts' rule computes it.
        self._discount: dict[str, np.ndarray] = {signal: np.ones(0) for signal in SIGNALS}
        # Model items whose popularity entries have been copied from the counts so far;
        # entries past it are filled when asked for (items join the model after their count).
        self._synced: dict[str, int] = dict.fromkeys(SIGNALS, 0)
        # Each model item's rank in id order: ties of related items go by id.
        self._id_order = IdOrder()
        # -1 per model item: the related items' scratch space (``ordered.related_best``).
        self._slots = np.full(0, -1, dtype=np.int64)
        # The batch's summed pairs while the lists are behind them (see :meth:`defer`).
        self._behind: PairCounts | None = None
        # (rows, partners, counts) of the entries followed since the lists were last read
        # or changed otherwise, in order (:meth:`_follow`): set by one compiled call for
        # many events, not one per event (about 7 µs each, a twentieth of learning on the
        # dense log).
        self._pending: tuple[list[int], list[int], list[float]] = ([], [], [])

    # --- keeping in step with the counts ------------------------------------------------------
    def defer(self, summed: PairCounts) -> None:
        """Leave the lists behind the counts until the next read or :meth:`catch_up`:
        ``CoOccurrence.apply`` sums every pair in ``summed`` (a batch's ``Changes.pairs``)
        and :meth:`add_pairs` does nothing, so a batch costs one update per (anchor,
        partner), not per pair. A read catches up first, which ends the deferral once
        anything was summed (later pairs update the lists as they come again)."""
        self._behind = summed

    def catch_up(self) -> None:
        """Bring every built list up to the counts of the (anchor, partner) entries summed
        since :meth:`defer`, and end the deferral unless nothing was summed yet."""
        summed = self._behind
        if not summed:
            return
        self._behind = None
        self._follow(
            (relation, anchor, partner)
            for relation, anchors in summed.items()
            if self._rows[relation]
            for anchor, partners in anchors.items()
            for partner in partners
        )

    def add_pairs(self, pairs: Iterable[Pair]) -> None:
        """Bring the built lists up to the counts of each pair's (anchor, partner), after
        ``CoOccurrence.apply`` counted them: most anchors have no list yet, and cost one
        lookup. Nothing while deferred (:meth:`defer`)."""
        if self._behind is None:
            self._follow([(relation, anchor, partner) for relation, anchor, partner, _ in pairs])

    def _follow(self, entries: Iterable[tuple[str, str, str]]) -> None:
        """Each (relation, anchor, partner) entry of a built list takes the count the counts
        hold, not an amount added: a partner new to the list joins with every pair counted
        so far (also those of before the model knew it). A partner the counts dropped (a
        login's correction), or the model does not know, drops the anchor's list: rebuilt
        from the counts on use. The entries wait in order, each the count then held, until
        the lists are read or changed otherwise (:meth:`_flush`), or many wait."""
        built, counts = self._rows, self.cooc.counts
        index_of = self.model.item_index
        rows: list[int] = []
        partners: list[int] = []
        values: list[float] = []
        dropped: set[int] = set()
        for relation, anchor, partner in entries:
            row = built[relation].get(anchor)
            if row is None:
                continue
            value = counts[relation][anchor].get(partner)
            index = index_of.get(partner)
            if value is None or index is None:
                dropped.add(row)
                self.forget(relation, anchor)
                continue
            rows.append(row)
            partners.append(index)
            values.append(value)
        if dropped:
            kept = [j for j, row in enumerate(rows) if row not in dropped]
            rows = [rows[j] for j in kept]
            partners = [partners[j] for j in kept]
            values = [values[j] for j in kept]
        if rows:
            pending_rows, pending_partners, pending_values = self._pending
            pending_rows += rows
            pending_partners += partners
            pending_values += values
            if len(pending_rows) >= MAX_PENDING:
                self._flush()

    def _flush(self) -> None:
        """Set the entries followed so far (one compiled call): before the lists are read,
        and before one is dropped (its row may be handed out again)."""
        rows, partners, values = self._pending
        if rows:
            self._pending = ([], [], [])
            self.arena.set(rows, partners, values)

    def _read_ready(self) -> None:
        """What every read of the lists does first: catch up with a deferred batch's sums
        and set the entries waiting."""
        if self._behind is not None:
            self.catch_up()
        self._flush()

    def forget(self, relation: str, anchor: str) -> None:
        """Drop an anchor's list (it was trimmed, or lost a partner): rebuilt from the counts
        on use."""
        row = self._rows[relation].pop(anchor, None)
        if row is not None:
            self._flush()
            self.arena.drop(row)

    def partners(self, relation: str, anchor: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(model indexes, counts) of an anchor's partners the model knows, or None when it
        has none: views of the arena (see ``arena.py``)."""
        self._read_ready()
        row = self._row(relation, anchor)
        return None if row is None else self.arena.view(row)

    def _row(self, relation: str, anchor: str) -> int | None:
        """The row of an anchor's list (built from the counts when it has none), None when
        the counts hold no partner the model knows."""
        built = self._rows[relation]
        row = built.get(anchor)
        if row is None:
            counts = self.cooc.counts[relation].get(anchor)
            if not counts:
                return None
            index_of = self.model.item_index
            # Sorted ids: the list's order is the same however the counts were built.
            ids = [partner for partner in sorted(counts) if partner in index_of]
            row = self.arena.new([index_of[p] for p in ids], [counts[p] for p in ids])
            built[anchor] = row
        return row if self.arena.size[row] else None

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
        self._read_ready()
        lists: list[int] = []
        scale: list[float] = []
        ranks: list[int] = []
        signals: list[int] = []
        rows: list[int] = []
        # The relations in use, each with its own row of the totals (summed in this order).
        used = [r for r in RELATIONS if relation_weights.get(r, 0.0) > 0]
        for row, relation in enumerate(used):
            relation_weight = relation_weights[relation]
            signal = SIGNALS.index(DISCOUNT_BY[relation])  # its discount vector, below
            built = self._rows[relation]
            for rank, (anchor, weight) in enumerate(zip(anchors, weights, strict=True)):
                found = built.get(anchor)
                if found is None and (found := self._row(relation, anchor)) is None:
                    continue
                lists.append(found)
                scale.append(weight * relation_weight)
                ranks.append(rank)
                signals.append(signal)
                rows.append(row)
        arena = self.arena
        # Where the lists lie now (a later move changes the arena's own entries).
        starts = arena.start[lists]
        sizes = arena.size[lists]
        rank_array = np.asarray(ranks, dtype=np.int64)
        if not lists:
            return np.zeros(n_items), Attribution(anchors, arena.partner, starts, sizes, rank_array)
        total = neighbour_totals(
            arena.partner,
            arena.count,
            starts,
            sizes,
            np.asarray(scale, dtype=np.float64),
            np.asarray(signals, dtype=np.int64),
            np.asarray(rows, dtype=np.int64),
            tuple(self.discount_vector(signal) for signal in SIGNALS),
            n_items,
            len(used),
        )
        return total, Attribution(anchors, arena.partner, starts, sizes, rank_array)

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
        the factor model does not know are not in the lists (in the evaluation, every item
        of a pair has been learned)."""
        ids = self.model.item_ids
        index_of = self.model.item_index
        excluded = np.zeros(len(ids), dtype=bool)
        # A heavy rater's exclusions are a thousand items: looked up by map (a C loop).
        excluded[[index for index in map(index_of.get, exclude) if index is not None]] = True
        if anchor in index_of:
            excluded[index_of[anchor]] = True
        self._read_ready()
        lists: list[int] = []
        signals: list[int] = []
        for relation in relations:
            row = self._row(relation, anchor)
            if row is not None:
                lists.append(row)
                signals.append(SIGNALS.index(DISCOUNT_BY[relation]))
        if not lists:
            return []
        arena = self.arena
        # One relation's first n are its ranking's first n: no depth cut, no scaling.
        cut = depth if len(relations) > 1 else -1
        if len(self._slots) < len(ids):
            self._slots = np.full(max(len(ids), 2 * len(self._slots)), -1, dtype=np.int64)
        index, score = related_best(
            arena.partner,
            arena.count,
            arena.start[lists],
            arena.size[lists],
            np.asarray(signals, dtype=np.int64),
            tuple(self.discount_vector(signal) for signal in SIGNALS),
            excluded,
            self._id_order.ranks(ids),
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
