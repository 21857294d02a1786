"""RankedScores keeps its keys in rank order as scores move up, down and stay."""

from __future__ import annotations

import math
import random

import pytest

from pipeline.core import ranked as ranked_scores
from pipeline.core.ranked import RankedScores


def ranking(scores: dict[str, float]) -> list[tuple[str, float]]:
    """The rule: descending score, ties by key ascending."""
    return sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))


@pytest.mark.parametrize(
    ("seed", "every", "eager"),
    [(0, 1, 256), (1, 1, 0), (2, 3, 0), (3, 7, 0), (4, 200, 0), (5, 7, 3), (6, 200, 256)],
)
def test_random_changes_keep_the_rank_order_of_a_full_sort(
    seed: int, every: int, eager: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Increases, decreases (to below zero), zero changes and new keys, with many ties
    (small integer amounts over few keys): read after every change or after several, with
    keys moved as they change, noted from the first change on (moved one by one at the
    read, or sorted again when many changed) or noted past a few, the order is what sorting
    every score gives, and ``add`` answers the new score."""
    monkeypatch.setattr(ranked_scores, "EAGER_ADDS", eager)
    rng = random.Random(seed)
    ranked = RankedScores({f"k{i}": float(rng.randint(0, 3)) for i in range(20)})
    scores = ranked.as_dict()
    for step in range(3000):
        key = f"k{rng.randint(0, 40)}"
        amount = float(rng.choice([-3, -1, 0, 1, 1, 1, 2, 5]))
        expected = scores.get(key, 0.0) + amount
        scores[key] = expected
        assert ranked.add(key, amount) == expected
        if step % every == 0:
            assert ranked.top(len(scores) + 1) == ranking(scores)
    assert ranked.top(len(scores) + 1) == ranking(scores)
    assert len(ranked) == len(scores)


@pytest.mark.parametrize("seed", range(3))
def test_float_changes_and_infinite_scores_keep_the_rank_order(seed: int) -> None:
    """Fractional amounts both ways (decayed counts), tiny ones that tie with nothing, and
    keys whose score becomes infinite (then only finite amounts): the order stays that of
    a full sort."""
    rng = random.Random(seed)
    ranked = RankedScores()
    scores: dict[str, float] = {}
    for step in range(3000):
        key = f"k{rng.randint(0, 60)}"
        if step in (500, 1500):
            amount = math.inf if step == 500 else -math.inf
        else:
            amount = rng.choice([rng.uniform(-2.0, 5.0), 1e-12, 0.0, 1.0])
        if math.isinf(scores.get(key, 0.0)) and math.isinf(amount):
            continue  # inf - inf is not a score
        scores[key] = scores.get(key, 0.0) + amount
        assert ranked.add(key, amount) == scores[key]
        assert ranked.top(len(scores) + 1) == ranking(scores)


def test_top_leaves_out_excluded_keys_and_stops_at_n() -> None:
    ranked = RankedScores({"a": 1.0, "b": 3.0, "c": 3.0, "d": 2.0})
    assert ranked.top(2) == [("b", 3.0), ("c", 3.0)]
    assert ranked.top(2, exclude={"b"}) == [("c", 3.0), ("d", 2.0)]
    assert ranked.top(0) == []
    ranked.add("a", 2.5)
    assert ranked.top(1) == [("a", 3.5)]
    ranked.add("a", -3.0)
    assert ranked.top(5) == [("b", 3.0), ("c", 3.0), ("d", 2.0), ("a", 0.5)]


def test_a_long_tail_of_ties_keeps_the_rank_order_whichever_way_an_entry_moves() -> None:
    """Thousands of keys sharing a score (a wide catalog's long tail): a tail key moving up
    past them (moved by a delete and an insert) and a head key moving a few places (moved
    by a slice) both keep the order of a full sort."""
    rng = random.Random(7)
    scores = {f"k{i:05d}": 1.0 for i in range(3000)}
    ranked = RankedScores(scores)
    for step in range(1500):
        key = f"k{rng.randrange(3000) if step % 3 else rng.randrange(20):05d}"
        amount = rng.choice([1.0, 1.0, -1.0, 2.0])
        scores[key] += amount
        ranked.add(key, amount)
        if step % 100 == 0:
            assert ranked.top(len(scores)) == ranking(scores)
    assert ranked.top(len(scores)) == ranking(scores)
