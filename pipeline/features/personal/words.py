"""Words in the factor model: items with text count as their own factors plus their words'.

With ``content_factor_rate`` above 0, the factor model (``mf.py``) scores an item with a
content vector (``content.py``: hashed TF-IDF, unit length) as

    (item_factors[i] + x_i @ W) . user + item_bias[i] + x_i @ w

where ``x_i`` is the item's content vector, ``W`` holds a factor row per hash bucket (per
word) and ``w`` a bias per bucket. Every event of an item with text moves its words' rows
too (``kernels.content_sgd_step``), so what users do with items teaches what their words
mean; an item nobody has touched yet scores by its words alone, and a new item with a few
events by both (as LightFM's item features do). Items without text score as before.

The words' part of every item (``x_i @ W`` and ``x_i @ w``) is kept for scoring and
computed again when the words have moved by :data:`REFRESH_STEPS` learning steps since
(items that joined or changed their text since are computed at once): between two refreshes
the lists see the words as they were, while learning always uses their current values.

Stored as the item rows are (``state.py``): one packed ``[bias, factors...]`` row per
bucket, written as commutative deltas, so several workers add up what each learned.
Pure: numpy and the compiled kernels.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from pipeline.features.personal.kernels import content_rows, content_sgd_step

if TYPE_CHECKING:
    from pipeline.features.personal.content import ContentTaste

# Learning steps after which the kept words' part of every item is computed again.
REFRESH_STEPS = 200


class WordFactors:
    """Factor and bias rows of the content vectors' buckets, and the words' part of items."""

    def __init__(self, taste: ContentTaste, n_factors: int, rate: float) -> None:
        self.taste = taste
        self.dim = dim = taste.dim
        self.n_factors = n_factors
        self.rate = rate
        self.factors = np.zeros((dim, n_factors), dtype=np.float32)
        self.bias = np.zeros(dim, dtype=np.float32)
        # The rows as they were at the last drain ([bias, factors...] per bucket).
        self._drained = self._rows()
        # The words' part of the first ``_count`` items, as of ``_steps`` steps ago.
        self._item_factors = np.zeros((64, n_factors), dtype=np.float32)
        self._item_bias = np.zeros(64, dtype=np.float32)
        self._count = 0
        self._steps = 0
        self._stale: set[int] = set()
        # The non-zero weights of the texts of the first ``_texts_upto`` items, as (rows,
        # buckets, weights) sorted by row (``kernels.content_rows``).
        empty = np.zeros(0, dtype=np.int64)
        self._texts = (empty, empty, np.zeros(0, dtype=np.float32))
        self._texts_upto = 0

    def _rows(self) -> np.ndarray:
        rows = np.empty((self.dim, self.n_factors + 1), dtype=np.float32)
        rows[:, 0] = self.bias
        rows[:, 1:] = self.factors
        return rows

    def step(
        self,
        item_factors: np.ndarray,
        item_bias: np.ndarray,
        user: np.ndarray,
        index: np.ndarray,
        labels: np.ndarray,
        weights: np.ndarray,
        rate: float,
        l2: float,
    ) -> np.ndarray:
        """One SGD step (``kernels.content_sgd_step``); returns the user's new vector."""
        self._steps += 1
        return content_sgd_step(
            item_factors,
            item_bias,
            user,
            index,
            labels,
            weights,
            rate,
            l2,
            self.taste.matrix,
            self.factors,
            self.bias,
            self.rate,
        )

    def changed(self, indexes: list[int]) -> None:
        """Items whose content vector changed (or that joined with one): the words' part of
        every item is computed again at the next scoring when one of them is already
        counted."""
        self._stale.update(index for index in indexes if index < self._texts_upto)

    def item_part(self, count: int) -> tuple[np.ndarray, np.ndarray]:
        """The words' factors and bias of the first ``count`` model items (see the module
        doc for when they are computed again)."""
        if self._steps >= REFRESH_STEPS or self._stale:
            self._count = 0
        if self._stale:
            self._replace_texts(sorted(self._stale))
            self._stale.clear()
        if count > self._texts_upto:
            self._add_texts(count)
        if count > len(self._item_bias):
            size = max(count, 2 * len(self._item_bias))
            self._item_factors = np.resize(self._item_factors, (size, self.n_factors))
            self._item_bias = np.resize(self._item_bias, size)
        if count > self._count:
            if self._count == 0:
                # Every item computed afresh: the words as they are now.
                self._steps = 0
            rows, columns, values = self._texts
            content_rows(
                rows,
                columns,
                values,
                self.factors,
                self.bias,
                self._count,
                count,
                self._item_factors,
                self._item_bias,
            )
            self._count = count
        return self._item_factors[:count], self._item_bias[:count]

    def _add_texts(self, count: int) -> None:
        """Find the non-zero weights of the texts of items ``_texts_upto`` to ``count``
        (appended: items only ever join at the end of the model's index)."""
        content = self.taste.matrix
        begin = self._texts_upto
        rows, columns = np.nonzero(content[begin:count])
        rows = rows.astype(np.int64) + begin
        self._join_texts(self._texts, (rows, columns.astype(np.int64), content[rows, columns]))
        self._texts_upto = count

    def _replace_texts(self, indexes: list[int]) -> None:
        """Find again the non-zero weights of items ``indexes`` (their text changed), in
        time linear in the weights kept, not in the items times the dimension."""
        content = self.taste.matrix
        kept_rows, kept_columns, kept_values = self._texts
        keep = ~np.isin(kept_rows, indexes)
        held = [index for index in indexes if index < len(content)]
        rows, columns = np.nonzero(content[held])
        rows = np.asarray(held, dtype=np.int64)[rows]
        self._join_texts(
            (kept_rows[keep], kept_columns[keep], kept_values[keep]),
            (rows, columns.astype(np.int64), content[rows, columns]),
        )
        order = np.argsort(self._texts[0], kind="stable")
        self._texts = tuple(part[order] for part in self._texts)  # type: ignore[assignment]

    def _join_texts(
        self,
        kept: tuple[np.ndarray, np.ndarray, np.ndarray],
        more: tuple[np.ndarray, np.ndarray, np.ndarray],
    ) -> None:
        self._texts = tuple(  # type: ignore[assignment]
            np.concatenate((old, new)) for old, new in zip(kept, more, strict=True)
        )

    def drain_deltas(self) -> dict[str, tuple[bytes, None]]:
        """What learning changed in the bucket rows since the last drain, as increments of
        the stored rows (``{bucket: (delta, None)}``, packed little-endian float32
        ``[bias, factors...]``). The rows are rounded to what the store computes, as the
        item rows are (``ImplicitMF.drain_deltas``)."""
        after = self._rows()
        delta = (after - self._drained).astype("<f4")
        moved = np.flatnonzero(np.any(delta != 0, axis=1))
        stored = (self._drained[moved].astype(np.float64) + delta[moved]).astype(np.float32)
        self.bias[moved] = stored[:, 0]
        self.factors[moved] = stored[:, 1:]
        self._drained[moved] = stored
        return {str(int(bucket)): (delta[bucket].tobytes(), None) for bucket in moved}

    def restore(self, rows: dict[str, bytes]) -> None:
        """Stored bucket rows (``{bucket: packed row}``); buckets past ``dim`` and rows of
        another size (another ``content_dim`` or factor count) are ignored."""
        width = self.n_factors + 1
        for bucket, raw in rows.items():
            if not bucket.isdigit() or int(bucket) >= self.dim or len(raw) != 4 * width:
                continue
            row = np.frombuffer(raw, dtype="<f4")
            index = int(bucket)
            if np.array_equal(row, self._drained[index]):
                continue
            self.bias[index] = row[0]
            self.factors[index] = row[1:]
            self._drained[index] = row
            # Every item's words' part is computed again at the next scoring.
            self._count = 0

    def buckets(self, indexes: list[int]) -> list[str]:
        """The buckets (as stored field names) that the content vectors of model items
        ``indexes`` hold, ascending."""
        content = self.taste.matrix
        held = [index for index in indexes if index < len(content)]
        if not held:
            return []
        present = np.flatnonzero(np.any(content[held] != 0, axis=0))
        return [str(int(bucket)) for bucket in present]
