"""The ids' order kept as keys as items join, and the best entries by score with ties by that order
(pipeline.features.personal.ordered)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from pipeline.features.personal.ordered import REBUILD_ABOVE, IdOrder, first_by_score


def assert_in_id_order(keys: np.ndarray, ids: list[str]) -> None:
    """Distinct keys that sort the items as their ids sort."""
    assert len(set(keys.tolist())) == len(ids)
    by_key = sorted(range(len(ids)), key=keys.__getitem__)
    assert by_key == sorted(range(len(ids)), key=ids.__getitem__)


@pytest.mark.parametrize("seed", range(4))
def test_keys_are_the_ids_order_as_items_join_one_by_one_or_in_bulk(seed: int) -> None:
    rng = random.Random(seed)
    order = IdOrder()
    ids: list[str] = []
    for _ in range(60):
        # Mostly a few at a time (inserted), sometimes more than a rebuild takes.
        joining = rng.choice([1, 1, 2, 5, REBUILD_ABOVE + 1 + rng.randrange(40)])
        ids += [f"{rng.choice('abcXY')}{rng.randrange(10**6)}-{len(ids)}" for _ in range(joining)]
        assert_in_id_order(order.keys(ids), ids)
    assert len(ids) > 500


def test_ids_joining_at_one_place_until_the_keys_touch_are_still_in_order() -> None:
    """Each id joins right after "a" (before the one that joined last): its key is the middle
    of a gap halved each time, until the keys touch and are computed anew."""
    order = IdOrder()
    ids = ["a", "b"]
    order.keys(ids)
    for k in range(60):
        ids.append("a" + "0" * (60 - k))  # sorts after "a", before the ids joined so far
        assert_in_id_order(order.keys(ids), ids)


def test_the_keys_are_unchanged_when_no_item_joined() -> None:
    order = IdOrder()
    ids = ["b", "a", "c"]
    first = order.keys(ids).tolist()
    assert_in_id_order(order.keys(ids), ids)
    assert order.keys(ids).tolist() == first
    assert order.keys([]).tolist() == []  # a new model: computed anew


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
