"""Content in the personal engine: items' text vectors next to their factors, a user's
content taste, and new items placed where items like them are.

Vectors come from the content feature (``features/content``: hashed TF-IDF, unit length);
here they are rows of a matrix aligned with the factor model's item index, so a user's
content score of every item is one matrix-vector product.

- A user's **taste** is the weighted sum of the vectors of the user's recent items (the same
  anchors and weights as the co-occurrence neighbours), normalised; it is derived from the
  history on each recompute, so it changes with every event and needs no state of its own.
- An item's **content score** for a user is the cosine of its vector and the taste (0 for
  items without text); the blend counts it for new items only (``recommend.py``).
- An item the factor model has never seen gets a row when its vector arrives: the factors
  of its most similar known items (by text), weighted by similarity, instead of noise, and
  the catalog's mean bias (text says what an item is like, not how popular it will be). So a new item scores like its look-alikes for every user before anyone touched it.

Pure: numpy only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from pipeline.features.personal.mf import ImplicitMF

# Known items whose factors start a new item (the most similar ones by text).
INIT_NEIGHBOURS = 10


class ContentTaste:
    """Content vectors of the factor model's items, by model index."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.matrix = np.zeros((64, dim), dtype=np.float32)
        self.known = np.zeros(64, dtype=bool)
        self.count = 0

    def __len__(self) -> int:
        return self.count

    def _fit(self, size: int) -> None:
        if size > len(self.matrix):
            grown = max(size, 2 * len(self.matrix))
            matrix = np.zeros((grown, self.dim), dtype=np.float32)
            matrix[: len(self.matrix)] = self.matrix
            known = np.zeros(grown, dtype=bool)
            known[: len(self.known)] = self.known
            self.matrix, self.known = matrix, known

    def update(self, model: ImplicitMF, vectors: Mapping[str, np.ndarray | None]) -> list[str]:
        """Set (or, for None, clear) the vectors of items; items new to ``model`` are added
        to it, started from their content neighbours (see the module doc). Returns the items
        added. Vectors of another size are ignored."""
        added = []
        for item_id in sorted(vectors):
            vector = vectors[item_id]
            index = model.item_index.get(item_id)
            if vector is None or len(vector) != self.dim:
                if index is not None and index < len(self.known) and self.known[index]:
                    self.known[index] = False
                    self.matrix[index] = 0.0
                    self.count -= 1
                continue
            if index is None:
                # With words in the factor model, they place the item (``words.py``).
                start = None if model.words is not None else self._neighbour_start(model, vector)
                if start is None:
                    index = model.add_item_like(item_id, None)
                else:
                    index = model.add_item_like(item_id, *start)
                added.append(item_id)
            self._fit(index + 1)
            if not self.known[index]:
                self.count += 1
            self.known[index] = True
            self.matrix[index] = vector
        return added

    def _neighbour_start(
        self, model: ImplicitMF, vector: np.ndarray
    ) -> tuple[np.ndarray, float] | None:
        """The similarity-weighted mean factors of the known items most like ``vector`` and
        the mean bias; None when no known item shares a word with it."""
        n = min(len(model.item_ids), len(self.matrix))
        if not self.count or n == 0:
            return None
        similarity = self.matrix[:n] @ vector
        similarity[~self.known[:n]] = 0.0
        take = min(INIT_NEIGHBOURS, n)
        nearest = np.argpartition(-similarity, take - 1)[:take]
        weights = similarity[nearest]
        keep = weights > 0
        if not keep.any():
            return None
        nearest, weights = nearest[keep], weights[keep].astype(np.float64)
        total = weights.sum()
        factors = (weights @ model.item_factors[nearest].astype(np.float64)) / total
        # The bias is popularity, which text does not tell: an untouched item starts at the
        # catalog's mean, not at its (often popular) look-alikes'.
        count = len(model.item_ids)
        bias = float(model.item_bias[:count].mean()) if count else 0.0
        return factors.astype(np.float32), bias

    def scores(
        self, model: ImplicitMF, anchors: Sequence[str], weights: Sequence[float]
    ) -> np.ndarray | None:
        """Cosine of every model item's vector with the taste of ``anchors`` (weighted), in
        model index order; None when no anchor has a vector."""
        taste = np.zeros(self.dim, dtype=np.float32)
        found = False
        for item_id, weight in zip(anchors, weights, strict=True):
            index = model.item_index.get(item_id)
            if index is not None and index < len(self.known) and self.known[index]:
                taste += np.float32(weight) * self.matrix[index]
                found = True
        norm = float(np.linalg.norm(taste))
        if not found or norm == 0.0:
            return None
        n = len(model.item_ids)
        self._fit(n)
        return (self.matrix[:n] @ (taste / norm)).astype(np.float64)
