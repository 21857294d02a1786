"""Top-K content neighbours of every item, kept up to date as items arrive, change or leave
(pure numpy).

:class:`ContentIndex` holds every item's vector as a row of one float32 matrix and, per row,
its ``k`` most similar rows (cosine: vectors are L2-normalised, so a dot product) with a
similarity of at least ``min_similarity``. :meth:`ContentIndex.apply` takes a batch of
changes and returns which items' lists changed:

- a new or changed item gets its whole list computed against every item;
- every other item whose K-th neighbour it beats takes it into its list (one vectorised
  comparison over all rows per block of changed items);
- items whose list held a changed or removed item are recomputed whole.

Cost per changed item: one pass over the matrix (``n x dim`` multiply-adds), plus a full
recompute of the few lists that held it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

# Rows scored against the whole matrix at once (bounds the temporary score block).
BLOCK = 64
# Rows whose vectors are this sparse or sparser (non-zero share 1/SPARSE_SHARE) are scored
# from their non-zero columns only.
SPARSE_SHARE = 8
_EMPTY = -1


class ContentIndex:
    """Item vectors and each item's top-``k`` most similar items."""

    def __init__(self, dim: int, k: int, min_similarity: float) -> None:
        self.dim = dim
        self.k = k
        self.min_similarity = min_similarity
        self._clear()

    def _clear(self) -> None:
        self.row_of: dict[str, int] = {}
        self.ids: list[str | None] = []
        self._free: list[int] = []
        # Column-major: scoring a short text reads a few whole columns.
        self.matrix = np.zeros((0, self.dim), dtype=np.float32, order="F")
        self.alive = np.zeros(0, dtype=bool)
        self.top_rows = np.zeros((0, self.k), dtype=np.int32)
        self.top_scores = np.zeros((0, self.k), dtype=np.float32)

    def __len__(self) -> int:
        return len(self.row_of)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self.row_of

    def vector(self, item_id: str) -> np.ndarray | None:
        row = self.row_of.get(item_id)
        return None if row is None else self.matrix[row]

    def neighbours(self, item_id: str) -> list[tuple[str, float]]:
        """The item's list, most similar first."""
        row = self.row_of.get(item_id)
        if row is None:
            return []
        rows, scores = self.top_rows[row].tolist(), self.top_scores[row].tolist()
        return [
            (self._id(other), score)
            for other, score in zip(rows, scores, strict=True)
            if other != _EMPTY
        ]

    # --- changes -------------------------------------------------------------------------

    def apply(self, changes: Sequence[tuple[str, np.ndarray | None]]) -> tuple[set[str], set[str]]:
        """Apply (item_id, vector) changes in order (None or an all-zero vector: the item
        leaves). Returns (items whose list changed, items that left)."""
        final: dict[str, np.ndarray | None] = {}
        for item_id, vector in changes:
            final[item_id] = None if vector is None or not vector.any() else vector
        recompute: set[int] = set()
        changed_rows: list[int] = []
        freed: list[int] = []
        left: set[str] = set()
        for item_id, vector in final.items():
            row = self.row_of.get(item_id)
            if row is not None:
                # Lists holding the item change (a new score) or lose it: recompute them.
                holders = np.flatnonzero((self.top_rows == row).any(axis=1) & self.alive)
                recompute.update(int(h) for h in holders)
                if vector is None:
                    self._release(row)
                    freed.append(row)
                    left.add(item_id)
                    continue
            elif vector is None:
                continue
            else:
                row = self._allocate(item_id)
            self.matrix[row] = vector
            changed_rows.append(row)
        touched = set(changed_rows)
        fixed = set(changed_rows) | recompute
        for start in range(0, len(changed_rows), BLOCK):
            rows = np.asarray(changed_rows[start : start + BLOCK], dtype=np.int64)
            scores = self._scores(rows)
            for index, row in enumerate(rows):
                self._set_list(int(row), scores[index])
            touched.update(self._merge(rows, scores, fixed))
        pending = sorted(recompute - set(freed) - set(changed_rows))
        for start in range(0, len(pending), BLOCK):
            rows = np.asarray(pending[start : start + BLOCK], dtype=np.int64)
            scores = self._scores(rows)
            for index, row in enumerate(rows):
                self._set_list(int(row), scores[index])
            touched.update(int(row) for row in rows)
        self._free.extend(freed)
        return {self._id(row) for row in touched if self.alive[row]}, left

    def load(
        self,
        vectors: Mapping[str, np.ndarray],
        lists: Mapping[str, Iterable[tuple[str, float]]],
    ) -> None:
        """Start from stored vectors and lists (entries naming unknown items are dropped)."""
        self._clear()
        for item_id in sorted(vectors):
            vector = vectors[item_id]
            if vector.shape == (self.dim,) and vector.any():
                allocated = self._allocate(item_id)
                self.matrix[allocated] = vector
        for item_id, entries in lists.items():
            row = self.row_of.get(item_id)
            if row is None:
                continue
            known = [(self.row_of[other], score) for other, score in entries if other in self]
            known.sort(key=lambda entry: -entry[1])
            for slot, (other, score) in enumerate(known[: self.k]):
                self.top_rows[row, slot] = other
                self.top_scores[row, slot] = score

    # --- internals -----------------------------------------------------------------------

    def _id(self, row: int) -> str:
        found = self.ids[row]
        assert found is not None
        return found

    def _allocate(self, item_id: str) -> int:
        if self._free:
            row = self._free.pop()
        else:
            row = len(self.ids)
            self.ids.append(None)
            if row >= len(self.matrix):
                self._grow(max(16, 2 * len(self.matrix)))
        self.ids[row] = item_id
        self.row_of[item_id] = row
        self.alive[row] = True
        self.matrix[row] = 0.0
        self.top_rows[row] = _EMPTY
        self.top_scores[row] = -np.inf
        return row

    def _release(self, row: int) -> None:
        item_id = self.ids[row]
        if item_id is not None:
            del self.row_of[item_id]
        self.ids[row] = None
        self.alive[row] = False
        self.matrix[row] = 0.0
        self.top_rows[row] = _EMPTY
        self.top_scores[row] = -np.inf

    def _grow(self, capacity: int) -> None:
        extra = capacity - len(self.matrix)
        grown = np.zeros((capacity, self.dim), dtype=np.float32, order="F")
        grown[: len(self.matrix)] = self.matrix
        self.matrix = grown
        self.alive = np.concatenate([self.alive, np.zeros(extra, dtype=bool)])
        self.top_rows = np.vstack([self.top_rows, np.full((extra, self.k), _EMPTY, np.int32)])
        self.top_scores = np.vstack(
            [self.top_scores, np.full((extra, self.k), -np.inf, np.float32)]
        )

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        """Similarity of ``rows`` to every row; -inf for itself, dead rows and those below
        ``min_similarity``."""
        used = len(self.ids)
        block = self.matrix[rows]
        if np.count_nonzero(block) * SPARSE_SHARE < block.size:
            # Short texts fill few buckets: only the columns a row uses are read.
            scores = np.empty((len(rows), used), dtype=np.float32)
            for index, vector in enumerate(block):
                columns = np.flatnonzero(vector)
                scores[index] = self.matrix[:used, columns] @ vector[columns]
        else:
            scores = block @ self.matrix[:used].T
        scores[:, ~self.alive[:used]] = -np.inf
        scores[np.arange(len(rows)), rows] = -np.inf
        scores[scores < self.min_similarity] = -np.inf
        return scores

    def _set_list(self, row: int, scores: np.ndarray) -> None:
        """``row``'s list: the ``k`` best of ``scores`` (ties: the lower row first)."""
        k = min(self.k, len(scores))
        best = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
        best = best[np.lexsort((best, -scores[best]))]
        best = best[np.isfinite(scores[best])]
        self.top_rows[row] = _EMPTY
        self.top_scores[row] = -np.inf
        self.top_rows[row, : len(best)] = best
        self.top_scores[row, : len(best)] = scores[best]

    def _merge(self, rows: np.ndarray, scores: np.ndarray, fixed: set[int]) -> list[int]:
        """Let ``rows`` into the lists of other rows whose K-th they beat; returns those rows."""
        used = scores.shape[1]
        beats = np.asarray((scores > self.top_scores[:used, -1][None, :]).any(axis=0), dtype=bool)
        if fixed:
            beats[[r for r in fixed if r < used]] = False
        targets = np.flatnonzero(beats)
        if len(targets) == 0:
            return []
        candidate_scores = np.concatenate([self.top_scores[targets], scores[:, targets].T], axis=1)
        candidate_rows = np.concatenate(
            [self.top_rows[targets], np.broadcast_to(rows, (len(targets), len(rows)))], axis=1
        )
        order = np.argsort(-candidate_scores, axis=1, kind="stable")[:, : self.k]
        self.top_scores[targets] = np.take_along_axis(candidate_scores, order, axis=1)
        kept = np.take_along_axis(candidate_rows, order, axis=1)
        kept[~np.isfinite(self.top_scores[targets])] = _EMPTY
        self.top_rows[targets] = kept
        return [int(t) for t in targets]
