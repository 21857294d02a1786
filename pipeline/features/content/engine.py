"""Catalog records in, content state changes out (pure): the vectoriser's document
frequencies and the neighbour index, folded over a batch of item versions.

An item with text that is available gets a vector (computed with the document frequencies
as they stand, its own document counted); an item without text, or unavailable, leaves:
its vector, its list and its place in other lists go, and its document is no longer
counted. A new version of an item first uncounts the previous version's document (its
buckets are the stored vector's non-zero entries).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from pipeline.core.items import Item
from pipeline.features.content.model import (
    DocumentFrequencies,
    buckets_of,
    item_text,
    term_counts,
    weigh,
)
from pipeline.features.content.neighbours import ContentIndex


@dataclass(frozen=True, slots=True)
class ContentConfig:
    """Settings ``content_*``: vector size, the item fields read as text, neighbours kept per
    item and the least similarity a neighbour needs."""

    dim: int
    text_fields: tuple[str, ...]
    neighbours: int
    min_similarity: float


@dataclass(slots=True)
class ContentUpdate:
    """What one batch changed: vectors to store (None: delete), document-frequency deltas
    per bucket and of the document count, the new lists of items whose list changed, and
    the items that left."""

    vectors: dict[str, np.ndarray | None] = field(default_factory=dict)
    df_deltas: dict[int, float] = field(default_factory=dict)
    documents_delta: float = 0.0
    lists: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    left: set[str] = field(default_factory=set)


class ContentEngine:
    """Document frequencies and the neighbour index of every item with text."""

    def __init__(self, config: ContentConfig) -> None:
        self.config = config
        self.df = DocumentFrequencies(config.dim)
        self.index = ContentIndex(config.dim, config.neighbours, config.min_similarity)

    def load(
        self,
        vectors: Mapping[str, np.ndarray],
        lists: Mapping[str, Iterable[tuple[str, float]]],
        df_counts: Iterable[tuple[int, float]],
        documents: float,
    ) -> None:
        self.df.load(df_counts, documents)
        self.index.load(vectors, lists)

    def vectorise(self, text: str) -> np.ndarray:
        """The vector ``text`` would get now, without counting it (queries, tests)."""
        buckets, counts = term_counts(text, self.config.dim)
        return weigh(buckets, counts, self.df)

    def apply(self, items: Sequence[Item]) -> ContentUpdate:
        """Fold item versions in arrival order (a later version replaces an earlier one)."""
        update = ContentUpdate()
        changes: list[tuple[str, np.ndarray | None]] = []
        current: dict[str, np.ndarray | None] = {}
        for item in items:
            previous = (
                current[item.item_id]
                if item.item_id in current
                else self.index.vector(item.item_id)
            )
            if previous is not None:
                self._count(update, buckets_of(previous), -1.0)
            text = item_text(item, self.config.text_fields) if item.available else ""
            buckets, counts = term_counts(text, self.config.dim)
            vector: np.ndarray | None = None
            if len(buckets):
                self._count(update, buckets, 1.0)
                vector = weigh(buckets, counts, self.df)
            current[item.item_id] = vector
            changes.append((item.item_id, vector))
        for item_id, vector in current.items():
            if vector is not None or item_id in self.index:
                update.vectors[item_id] = vector
        changed, left = self.index.apply(changes)
        update.left = left
        update.lists = {item_id: self.index.neighbours(item_id) for item_id in sorted(changed)}
        # An item that never had a vector and still has none changes nothing stored.
        update.vectors = {
            item_id: vector
            for item_id, vector in update.vectors.items()
            if vector is not None or item_id in left
        }
        return update

    def _count(self, update: ContentUpdate, buckets: np.ndarray, sign: float) -> None:
        self.df.add(buckets, sign)
        for index in buckets.tolist():
            update.df_deltas[index] = update.df_deltas.get(index, 0.0) + sign
        update.documents_delta += sign
