"""Related-item partners of a user's recent items, as arrays the blend can add in one step.

The for-you blend adds, for each recent item (an anchor), the popularity-discounted scores of
its best partners to the score vector of every item. This index keeps each anchor's partners
as numpy arrays aligned with the factor model's item indexes, and the popularity counters as
a vector in the same order, so scoring an anchor is a few vector operations.
"""

from __future__ import annotations

import numpy as np

from pipeline.core.feedback import SIGNALS
from pipeline.features.personal.mf import ImplicitMF
from pipeline.features.related.model import DISCOUNT_BY, RELATIONS, CoOccurrence

# (item indexes, co-occurrence counts, partner ids) of one anchor and relation.
PartnerArrays = tuple[np.ndarray, np.ndarray, set[str]]


class NeighbourIndex:
    """Partner arrays per (relation, anchor), cached until the anchor's pairs change."""

    def __init__(
        self, cooc: CoOccurrence, model: ImplicitMF, partners: int, discount: float
    ) -> None:
        self.cooc = cooc
        self.model = model
        self.partners = partners
        self.discount = discount
        self._arrays: dict[tuple[str, str], PartnerArrays | None] = {}
        self._partner_ids: dict[str, set[str]] = {}
        self._popularity: dict[str, np.ndarray] = {signal: np.zeros(0) for signal in SIGNALS}

    def forget(self, relation: str, anchor: str) -> None:
        """The anchor's pairs of ``relation`` changed."""
        self._arrays.pop((relation, anchor), None)
        self._partner_ids.pop(anchor, None)

    def _partner_counts(self, anchor: str, relation: str) -> PartnerArrays | None:
        """(item indexes, co-occurrence counts, partner ids) of one anchor, sorted by index.

        The popularity discount is applied at use time (:meth:`scores`), so the cache never
        holds a stale discount.
        """
        key = (relation, anchor)
        if key in self._arrays:
            return self._arrays[key]
        partners = self.cooc.counts[relation].get(anchor)
        entry = None
        if partners:
            index_of = self.model.item_index
            known = sorted((index_of[p], count) for p, count in partners.items() if p in index_of)
            if known:
                entry = (
                    np.fromiter((i for i, _ in known), dtype=np.int64, count=len(known)),
                    np.fromiter((c for _, c in known), dtype=np.float64, count=len(known)),
                    set(partners),
                )
        self._arrays[key] = entry
        return entry

    def scores(self, anchor: str, relation: str) -> tuple[np.ndarray, np.ndarray] | None:
        """The anchor's best ``partners`` partners: (indexes, discounted scores scaled to the
        best), ranked as :func:`~pipeline.features.related.model.rank_related` ranks them."""
        entry = self._partner_counts(anchor, relation)
        if entry is None:
            return None
        indexes, counts, _ = entry
        popularity = self.popularity_vector(DISCOUNT_BY[relation])
        discounted = counts / (popularity[indexes] + 1.0) ** self.discount
        keep = self.partners
        if len(discounted) > keep:
            # Ties at the cut go to the smaller index: stable and the same after a restart.
            chosen = np.lexsort((indexes, -discounted))[:keep]
            indexes, discounted = indexes[chosen], discounted[chosen]
        best = discounted.max()
        return indexes, discounted / (best if best > 0 else 1.0)

    def partners_of(self, anchor: str) -> set[str]:
        """Every partner of ``anchor`` in any relation (cached like the counts)."""
        partners = self._partner_ids.get(anchor)
        if partners is None:
            partners = set()
            for relation in RELATIONS:
                entry = self._partner_counts(anchor, relation)
                if entry is not None:
                    partners |= entry[2]
            self._partner_ids[anchor] = partners
        return partners

    def popularity_vector(self, signal: str) -> np.ndarray:
        """Popularity counts aligned with the model's item indexes (grown on demand)."""
        vector = self._popularity[signal]
        count = len(self.model.item_ids)
        if len(vector) < count:
            grown = np.zeros(max(count, 2 * len(vector)))
            grown[: len(vector)] = vector
            source = self.cooc.popularity[signal]
            for index in range(len(vector), count):
                grown[index] = source.get(self.model.item_ids[index], 0.0)
            vector = self._popularity[signal] = grown
        return vector

    def count_popularity(self, item_id: str, signal: str, amount: float = 1.0) -> None:
        """One positive event of ``signal`` for ``item_id`` (dict and aligned vector)."""
        self.cooc.count_popularity(item_id, signal, amount)
        index = self.model.item_index.get(item_id)
        vector = self._popularity[signal]
        if index is not None and index < len(vector):
            vector[index] += amount

    def load_popularity(self, signal: str, counts: dict[str, float]) -> None:
        self.cooc.popularity[signal].update(counts)
        self._popularity[signal] = np.zeros(0)
