"""The ids' order kept as items join, and the best entries by score with ties by that order
(pipeline.features.personal.ordered)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from pipeline.features.personal.ordered import REBUILD_ABOVE, IdOrder, first_by_score


@pytest.mark.parametrize("seed", range(4))
def test_ranks_are_the_ids_order_as_items_join_one_by_one_or_in_bulk(seed: int) -> None:
    rng = random.Random(seed)
    order = IdOrder()
    ids: list[str] = []
    for _ in range(60):
        # Mostly a few at a time (inserted), sometimes more than a rebuild takes.
        joining = rng.choice([1, 1, 2, 5, REBUILD_ABOVE + 1 + rng.randrange(40)])
        ids += [f"{rng.choice('abcXY')}{rng.randrange(10**6)}-{len(ids)}" for _ in range(joining)]
        ranks = order.ranks(ids)
        expected = sorted(range(len(ids)), key=ids.__getitem__)
        assert ranks.tolist() == np.argsort(expected).tolist()
    assert len(ids) > 500


def test_the_ranks_are_unchanged_when_no_item_joined() -> None:
    order = IdOrder()
    ids = ["b", "a", "c"]
    assert order.ranks(ids).tolist() == [1, 0, 2]
    assert order.ranks(ids).tolist() == [1, 0, 2]
    assert order.ranks([]).tolist() == []  # a new model: computed anew


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("n", [0, 1, 3, 10, 50, 400])
def test_first_by_score_are_the_best_ties_by_rank(seed: int, n: int) -> None:
    """Both ways (one pass for few of many, sorts else) give Python's sort by (-score,
    rank), cut to n; ties are frequent (scores from few distinct values)."""
    rng = np.random.default_rng(seed)
    m = int(rng.integers(0, 300))
    score = rng.integers(1, 6, m) / rng.choice([1.0, 3.0], m)
    rank = rng.permutation(m).astype(np.int64)
    expected = sorted(range(m), key=lambda j: (-score[j], rank[j]))[:n]
    assert first_by_score(score, rank, n).tolist() == expected
