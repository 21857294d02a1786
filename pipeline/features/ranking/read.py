"""Ranking a caller's list of items for one user with the click model's stored weights.

Two round trips: the catalog categories and attributes of the items with the user's
attributes (the users feature's record), then one HMGET of every weight the items'
features need from ``{p}:rank:weights``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from pipeline.core.keys import Keys
from pipeline.features.catalog.read import ATTRIBUTES, CATEGORIES, ItemFields, item_fields
from pipeline.features.ranking.features import (
    features,
    item_attribute_features,
    user_attribute_features,
    with_time,
)
from pipeline.features.ranking.model import ClickModel, MovedFeatures, RankingConfig
from pipeline.features.users.read import users_attributes
from pipeline.store.base import Reads, Store

SOURCE = {"model": "ranking"}


def _present(indexes: list[int], stored: list[Any]) -> dict[int, float]:
    return {
        index: float(value)
        for index, value in zip(indexes, stored, strict=True)
        if value is not None
    }


async def load_weights(
    store: Store, keys: Keys, model: ClickModel, indexes: Iterable[Sequence[int]]
) -> None:
    """Set ``model``'s weights of every index in ``indexes`` from the stored table."""
    touched = sorted({index for group in indexes for index in group})
    model.set_weights(_present(touched, await store.hmget(keys.rank_weights(), touched)))


async def stored_learning_state(
    store: Store, keys: Keys, indexes: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    """The stored weights and AdaGrad sums of squared gradients of ``indexes`` (what the
    learner needs; the reader needs only the weights), as float64 arrays in their order: 0.0
    where none is stored. One round trip for both tables."""
    weights, sums = await store.read(
        Reads().hmget(keys.rank_weights(), indexes).hmget(keys.rank_sums(), indexes)
    )
    return _numbers_or_zero(weights), _numbers_or_zero(sums)


# Tables of more bits than this are not kept in memory (2 ** 22 indexes: 72 MB).
MAX_KEPT_BITS = 22


class LearnedTables:
    """The stored weights and sums of squares a lone worker has met, as Redis holds them
    (the values it read, then the values it wrote once their batch committed): while it
    holds every partition nobody else writes the tables, so a batch reads only the
    indexes it meets for the first time. Dense arrays of ``2 ** n_bits`` (17 MB at the
    default 20 bits)."""

    def __init__(self, n_bits: int) -> None:
        size = 1 << n_bits
        self.weights = np.zeros(size, dtype=np.float64)
        self.sums = np.zeros(size, dtype=np.float64)
        self.known = np.zeros(size, dtype=bool)

    async def read(
        self, store: Store, keys: Keys, indexes: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """What :func:`stored_learning_state` gives for ``indexes`` (ascending, distinct),
        reading from the store only those not met yet."""
        missing = indexes[~self.known[indexes]]
        if len(missing):
            weights, sums = await stored_learning_state(store, keys, missing.tolist())
            self.weights[missing] = weights
            self.sums[missing] = sums
            self.known[missing] = True
        return self.weights[indexes], self.sums[indexes]

    def update(self, moved: MovedFeatures) -> None:
        """The values a committed batch wrote."""
        indexes = np.asarray(moved.indexes, dtype=np.int64)
        self.weights[indexes] = moved.weights
        self.sums[indexes] = moved.sums
        self.known[indexes] = True


def _numbers_or_zero(stored: list[Any]) -> np.ndarray:
    return np.array([0.0 if value is None else float(value) for value in stored], dtype=np.float64)


async def rank_items(
    store: Store,
    keys: Keys,
    user_id: str,
    item_ids: Sequence[str],
    context: Mapping[str, Any],
    config: RankingConfig,
    now_ms: int,
) -> list[dict[str, Any]]:
    """``item_ids`` ordered by the click model for ``user_id`` in ``context`` at ``now_ms``
    (the hour and weekday features, as the agent derives them from event times).

    Returns ``[{"item_id", "score", "source": {"model": "ranking"}}]``, score descending,
    ties in input order; a repeated id keeps its first place only. ``config`` must match
    the agent's (same ``n_bits`` and ``seed``). Items the model has never seen are ranked by
    the features they do have (bias, context, categories).
    """
    unique = list(dict.fromkeys(item_ids))
    if not unique:
        return []
    model = config.model()
    context = with_time(context, now_ms)
    catalog, found = await asyncio.gather(
        item_fields(store, keys, unique, (CATEGORIES, ATTRIBUTES)),
        users_attributes(store, keys, [user_id] if user_id else []),
    )
    attributes = user_attribute_features(found.get(user_id, {}))
    empty = ItemFields()
    per_item = []
    for item_id in unique:
        fields = catalog.get(item_id, empty)
        item_attributes = item_attribute_features(fields.attributes) if attributes else ()
        names = features(
            user_id, item_id, fields.categories, context, None, attributes, item_attributes
        )
        per_item.append(model.indexes(names))
    await load_weights(store, keys, model, per_item)
    scored = [
        (item_id, model.proba_indexes(indexes))
        for item_id, indexes in zip(unique, per_item, strict=True)
    ]
    # sorted() is stable: equal scores keep the input order.
    scored.sort(key=lambda pair: -pair[1])
    return [{"item_id": item_id, "score": score, "source": SOURCE} for item_id, score in scored]
