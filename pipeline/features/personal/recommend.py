"""Recommending from the personal engine: the for-you blend with its attribution, and related
items in memory (the evaluation's view of the related feature).

The for-you score of every item is the factor model's logit (a new item's positive logit
counts ``1 + new_item_weight`` times), plus the discounted neighbour
scores of the user's recent items (``neighbour_weight / (1 + rank)`` per recent item; an
item only rated low, explicit negative feedback, is none of them), plus
the cosine of the item's text with the user's content taste, fading as the item gathers
events (``content_taste_weight``; :meth:`Recommender._content`, ``content.py``), plus recently viewed items (``recent_weight``), plus trending for users
with fewer than ``cold_start_interactions`` interactions. Excluded items (bought, consumed, rated,
blacklisted) never appear.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.features.personal.history import LIKED_ENTRIES
from pipeline.features.personal.kernels import top_indexes
from pipeline.features.personal.neighbours import Attribution
from pipeline.features.related.model import RELATIONS

if TYPE_CHECKING:
    from pipeline.features.personal.engine import Engine

# Recent items named as the source of one recommended item, at most.
MAX_SOURCE_ITEMS = 3
# Trending items blended into a cold user's list, at most.
COLD_TRENDING_ITEMS = 200


@dataclass(frozen=True, slots=True)
class BlendConfig:
    """Weights and depths of the for-you blend (settings of the same names)."""

    neighbour_weight: float
    neighbour_relations: Mapping[str, float]
    neighbour_items: int
    recent_weight: float
    recent_window_s: int
    cold_start_interactions: int
    cold_start_trending_weight: float
    cold_start_half_life_s: float
    content_taste_weight: float
    new_item_weight: float
    new_item_days: float
    # Items created further than this after the latest event are not new (see Engine).
    max_future_skew_s: float

    def __post_init__(self) -> None:
        unknown = set(self.neighbour_relations) - set(RELATIONS)
        if unknown:
            raise ValueError(
                f"neighbour_relations: unknown relations {sorted(unknown)}; known: {RELATIONS}"
            )


@dataclass(frozen=True, slots=True)
class Recommendation:
    item_id: str
    score: float
    source: dict[str, Any]


@dataclass(slots=True)
class Parts:
    """One user's score of every item (the model's index order), part by part.

    ``blend`` is what the for-you list ranks by; ``factors`` and ``neighbours`` are the two
    components alone (the evaluation reports each, so that the blend must beat its parts);
    ``content`` is the weighted content-taste part of the blend (None when it added nothing).
    """

    factors: np.ndarray
    neighbours: np.ndarray | None
    content: np.ndarray | None
    blend: np.ndarray
    attribution: Attribution | None
    cold: bool


class Recommender:
    """Reads the engine's state; never changes what it learned (only caches)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        empty = np.zeros(0, dtype=np.int64)
        self._cold: tuple[tuple[int, int] | None, np.ndarray, np.ndarray] = (None, empty, empty)

    def parts(self, user_id: str) -> Parts | None:
        """Every item's score for ``user_id``, or None while no item is known."""
        engine = self.engine
        c = engine.config.blend
        model = engine.model
        if not model.item_ids:
            return None
        history = engine.histories.get(user_id)
        factors = model.score_all(user_id).astype(np.float64)
        scores = factors.copy()
        if c.new_item_weight > 0:
            # New items: what the factor model sees in them counts more. Their factors and
            # bias are learned from their first, most recent events (or start from their
            # look-alikes' with content on) while the co-occurrence counts, summed over all
            # time, still favour items that had years to gather them.
            new = engine.new_item_indexes()
            if len(new):
                scores[new] += c.new_item_weight * np.maximum(factors[new], 0.0)
        neighbours = None
        attribution = None
        content = None
        if history and history.recent:
            anchors = history.items_since(0, LIKED_ENTRIES, limit=c.neighbour_items)
            weights = [1.0 / (1.0 + rank) for rank in range(len(anchors))]
            if c.neighbour_weight > 0:
                neighbours, attribution = engine.neighbours.scores(
                    anchors,
                    [c.neighbour_weight * w for w in weights],
                    len(model.item_ids),
                    c.neighbour_relations,
                )
                scores += neighbours
            if c.content_taste_weight > 0 and len(engine.taste):
                content = self._content(anchors, weights, neighbours)
                if content is not None:
                    scores += content
        if history and history.recent and c.recent_weight > 0:
            # Recently viewed, not yet converted: the strongest intent signal there is.
            newest = history.recent[-1][2]
            viewed = history.clicked_since(newest - c.recent_window_s * 1000, c.neighbour_items)
            for rank, item_id in enumerate(viewed):
                index = model.item_index.get(item_id)
                if index is not None:
                    scores[index] += c.recent_weight / (1.0 + rank)
        cold = history is None or history.interactions < c.cold_start_interactions
        if cold and c.cold_start_trending_weight > 0:
            indexes, boost = self._cold_trending()
            if len(indexes):
                scores[indexes] += boost
        return Parts(factors, neighbours, content, scores, attribution, cold)

    def _cold_trending(self) -> tuple[np.ndarray, np.ndarray]:
        """(model indexes, boost) of the top trending items for a cold user's list:
        ``cold_start_trending_weight * 4 * count / best count``. Cached until the counts or
        the items change: a batch's lists share it."""
        engine = self.engine
        # Items are only ever appended to the model: their count says whether any joined.
        key = (engine.trending.version, len(engine.model.item_ids))
        if self._cold[0] != key:
            top_trending = engine.trending.top(COLD_TRENDING_ITEMS)
            index_of = engine.model.item_index
            weight = engine.config.blend.cold_start_trending_weight
            best = top_trending[0][1] if top_trending else 1.0
            found = [(index_of[item], value) for item, value in top_trending if item in index_of]
            indexes = np.array([index for index, _ in found], dtype=np.int64)
            boost = np.array([weight * 4.0 * value / best for _, value in found], dtype=np.float64)
            self._cold = (key, indexes, boost)
        return self._cold[1], self._cold[2]

    def _content(
        self, anchors: list[str], weights: list[float], neighbours: np.ndarray | None
    ) -> np.ndarray | None:
        """The content-taste part of the blend: ``content_taste_weight * scale * cosine /
        (1 + interactions)`` per new item (created less than ``new_item_days`` before the
        latest event; 0 for older items and items of unknown age), where ``scale`` is the
        user's best neighbour score (1 without one) and ``interactions`` the item's positive
        events. A new item nobody has touched gets its whole text match, on the scale of
        what the user's co-occurrence evidence gives the best-matched items, so a new item
        as like the user's items as their best neighbours can stand next to them; as it
        gathers events, the evidence takes over. Old items nobody touched get nothing: their
        silence is evidence too (the long tail), which text knows nothing of."""
        engine = self.engine
        cosines = engine.taste.scores(engine.model, anchors, weights)
        if cosines is None:
            return None
        scale = 1.0
        if neighbours is not None and len(neighbours):
            scale = max(float(neighbours.max()), 1.0)
        count = len(cosines)
        interactions = engine.neighbours.popularity_vector("click")[:count]
        interactions = interactions + engine.neighbours.popularity_vector("conversion")[:count]
        new = engine.new_items()[:count]
        weight = engine.config.blend.content_taste_weight * scale
        return weight * np.maximum(cosines, 0.0) * new / (1.0 + interactions)

    def recommend(
        self, user_id: str, n: int, exclude: set[str] | None = None
    ) -> list[Recommendation]:
        """Top ``n`` items for a user; ``exclude`` defaults to what the user bought, consumed,
        rated or blacklisted."""
        return [
            Recommendation(entry["item_id"], entry["score"], dict(entry["source"]))
            for entry in self.entries(user_id, n, exclude, digits=None)
        ]

    def entries(
        self, user_id: str, n: int, exclude: set[str] | None = None, digits: int | None = 6
    ) -> list[dict[str, Any]]:
        """:meth:`recommend` as the stored for-you list holds it: ``{"item_id", "score"
        (rounded to ``digits``; None: exact), "source"}`` per item. Items led to by the same
        recent items share one ``source`` dict (the worker builds one list per touched user
        per batch: per served item, building dicts costs more than scoring the catalog)."""
        served = self._served(user_id, n, exclude)
        if served is None:
            return []
        stage, indexes, scores, ranks, anchors = served
        ids = self.engine.model.item_ids
        if digits is not None:
            scores = np.round(scores, digits)
        shared: dict[tuple[int, ...], dict[str, Any]] = {}
        out = []
        for index, score, first in zip(indexes.tolist(), scores.tolist(), ranks, strict=True):
            source = shared.get(first)
            if source is None:
                source = shared[first] = {"model": "for_you", "stage": stage}
                if first[0] >= 0:
                    source["source_items"] = [anchors[rank] for rank in first if rank >= 0]
            out.append({"item_id": ids[index], "score": score, "source": source})
        return out

    def _served(
        self, user_id: str, n: int, exclude: set[str] | None
    ) -> tuple[str, np.ndarray, np.ndarray, list[tuple[int, ...]], list[str]] | None:
        """What one list serves: (stage, model indexes, exact scores, for each item the ranks
        of the first anchors that led to it (-1 past the last), the anchors); None while no
        item is known. ``exclude`` defaults to what the user bought, consumed,
        rated or blacklisted."""
        parts = self.parts(user_id)
        if parts is None:
            return None
        if exclude is None:
            history = self.engine.histories.get(user_id)
            exclude = set(history.excluded) if history else set()
        stage = "cold_start" if parts.cold else "personal"
        indexes, scores = self._top_indexes(parts.blend, n, exclude)
        attribution = parts.attribution
        if attribution is None:
            return stage, indexes, scores, [(-1,) * MAX_SOURCE_ITEMS] * len(indexes), []
        ranks = attribution.first_ranks(indexes, MAX_SOURCE_ITEMS)
        return stage, indexes, scores, ranks, attribution.anchors

    def top(self, scores: np.ndarray, n: int, exclude: set[str]) -> list[tuple[str, float]]:
        """The ``n`` best (item_id, score) of a score vector, ``exclude`` left out, ties by
        model index. Changes ``scores`` (excluded items become -inf)."""
        ids = self.engine.model.item_ids
        indexes, best = self._top_indexes(scores, n, exclude)
        return [
            (ids[index], score)
            for index, score in zip(indexes.tolist(), best.tolist(), strict=True)
        ]

    def excluded_indexes(self, exclude: Iterable[str]) -> list[int]:
        """The model indexes of the items of ``exclude`` that the model knows: a heavy
        rater's exclusions are a thousand items, looked up by map (a C loop) and set to
        -inf in one step."""
        index_of = self.engine.model.item_index
        return [index for index in map(index_of.get, exclude) if index is not None]

    def _top_indexes(
        self, scores: np.ndarray, n: int, exclude: set[str]
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`top` as (model indexes, scores) arrays."""
        model = self.engine.model
        if exclude:
            scores[self.excluded_indexes(exclude)] = -math.inf
        top = top_indexes(scores, min(n, len(model.item_ids)))
        return top, scores[top]

    def related(
        self, item_id: str, n: int, relation: str | None = None, exclude: set[str] | None = None
    ) -> list[Recommendation]:
        """Related items of one relation, or of all relations blended (``relation=None``)."""
        engine = self.engine
        relations = [relation] if relation else list(RELATIONS)
        depth = max(n, engine.config.related.max_neighbours)
        return [
            Recommendation(
                partner, score, {"model": "related", "relation": label, "source_items": [item_id]}
            )
            # The item itself is never its own related item (the index leaves it out):
            # ``exclude`` (a heavy rater's thousand items) is not copied to add it.
            for partner, score, label in engine.neighbours.related(
                item_id, relations, n, depth, exclude or ()
            )
        ]
