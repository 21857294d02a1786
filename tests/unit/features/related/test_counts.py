"""The co-occurrence counts: lists kept in blocks of one arena, in item numbers, hold exactly
what a dictionary per list holds under the counts' rule, through new items, new lists,
growth (blocks that move), loads and reclaims."""

from __future__ import annotations

import random

import numpy as np
import pytest

from pipeline.features.related import counts
from pipeline.features.related.counts import CountLists
from tests.unit.features.helpers import count_pair

RELATIONS = ("near", "after")


def assert_holds(lists: CountLists, expected: dict[tuple[str, str], dict[str, float]]) -> None:
    for (relation, anchor), want in expected.items():
        assert lists.partners(relation, anchor) == want
        row = lists.row(relation, anchor)
        assert (row is None) == (not want)
        if row is not None:
            partners, _ = lists.arena.view(row)
            assert np.all(np.diff(partners) > 0)  # each partner once, ascending
    assert lists.snapshot() == {
        relation: {a: dict(p) for (r, a), p in expected.items() if r == relation and p}
        for relation in RELATIONS
    }


@pytest.mark.parametrize(("seed", "most_waiting"), [(0, 65_536), (1, 65_536), (2, 1), (3, 7)])
def test_lists_hold_what_dictionaries_hold(
    seed: int, most_waiting: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Random pairs in batches (new items, new lists, partners held and not, negative
    amounts that remove partners or find none, one list many times in a call), lists
    loaded in place of what they held, from an arena small enough to move and reclaim
    blocks many times, with pairs counted at the next read or as a few wait; lists left
    longer than ``longest`` are marked; the sums of a batch are what it added."""
    monkeypatch.setattr(counts, "MAX_WAITING", most_waiting)
    rng = random.Random(seed)
    lists = CountLists(RELATIONS, longest=30, entries=64, summing=True)
    expected: dict[tuple[str, str], dict[str, float]] = {}
    sums: dict[str, dict[str, dict[str, float]]] = {}
    items = [f"i{k}" for k in range(300)] + ["ünïcode", "a:b", ""]
    for _ in range(300):
        if rng.random() < 0.1:
            relation, anchor = rng.choice(RELATIONS), rng.choice(items)
            loaded = {p: float(rng.randrange(1, 9)) for p in rng.sample(items, rng.randrange(70))}
            lists.load(relation, anchor, loaded)
            expected[(relation, anchor)] = dict(loaded)
            continue
        batch = []
        for _ in range(rng.randrange(1, 80)):
            relation = rng.choice(RELATIONS)
            anchor = rng.choice(items[: rng.choice((20, 300))])
            held = list(expected.get((relation, anchor), {}))
            partner = rng.choice(held) if held and rng.random() < 0.5 else rng.choice(items)
            amount = float(rng.choice([-3, -1, 0, 1, 1, 2, 5]))
            batch.append((relation, anchor, partner, amount))
            count_pair(expected.setdefault((relation, anchor), {}), partner, amount)
        lists.add(batch)
        for relation, anchor, partner, amount in batch:
            summed = sums.setdefault(relation, {}).setdefault(anchor, {})
            summed[partner] = summed.get(partner, 0.0) + amount
        if rng.random() < 0.5:  # the sums since the last taken (also while pairs wait)
            assert lists.take_sums() == sums
            sums = {}
        long = set(lists.take_long())
        assert long >= {(r, a) for r, a, _, _ in batch if len(expected[(r, a)]) > 30}
        assert long <= {(r, a) for r, a, _, _ in batch}  # only lists the batch touched
        assert_holds(lists, expected)
    assert len(lists.arena.partner) > 64  # the arena grew


def test_a_view_handed_out_is_not_overwritten_by_moves_and_reclaims() -> None:
    """What a reader holds (``Attribution`` keeps the arrays of one scoring) stays as it was
    while other lists are made and grow: a move or reclaim writes into new blocks and new
    arrays only."""
    lists = CountLists(RELATIONS, longest=100, entries=32)
    lists.add([("near", "x", "a", 1.0), ("near", "x", "b", 2.0), ("near", "x", "c", 3.0)])
    partners, counts = lists.arena.view(lists.row("near", "x"))
    before = (partners.copy(), counts.copy())
    for k in range(50):
        lists.add([("after", f"o{k}", f"p{j}", 2.0) for j in range(40)])
    assert np.array_equal(partners, before[0]) and np.array_equal(counts, before[1])
    assert lists.partners("near", "x") == {"a": 1.0, "b": 2.0, "c": 3.0}


def test_an_arena_made_empty_grows() -> None:
    """No entries to start with: the first list still finds a block (the size doubles from
    a block, not from nothing)."""
    lists = CountLists(RELATIONS, longest=9, entries=0)
    lists.add([("near", "x", p, float(k)) for k, p in enumerate("abcde", start=1)])
    assert lists.partners("near", "x") == {"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0, "e": 5.0}


def test_lists_are_found_where_they_lie_for_every_relation_and_anchor() -> None:
    """``held``: relation by relation, anchors in order; lists with no entry (or emptied by
    corrections) and anchors never numbered are left out."""
    lists = CountLists(RELATIONS, longest=9)
    lists.add([("near", "x", "a", 1.0), ("near", "y", "b", 1.0), ("after", "y", "c", 1.0)])
    lists.add([("after", "z", "a", 1.0), ("after", "z", "a", -1.0)])  # z's list: empty again
    starts, sizes, relation_at, anchor_at = lists.held(["after", "near"], ["y", "never", "z", "x"])
    assert relation_at.tolist() == [0, 1, 1] and anchor_at.tolist() == [0, 0, 3]
    arena = lists.arena
    found = [
        dict(zip(arena.partner[s : s + n].tolist(), arena.count[s : s + n].tolist(), strict=True))
        for s, n in zip(starts.tolist(), sizes.tolist(), strict=True)
    ]
    number = lists.number
    assert found == [{number["c"]: 1.0}, {number["b"]: 1.0}, {number["a"]: 1.0}]


def test_an_unknown_relation_is_refused_at_once_and_loses_no_pair() -> None:
    """A pair of a relation the lists do not hold raises where it is added, none of its
    call's pairs taken; the pairs waiting before it are still counted."""
    lists = CountLists(RELATIONS, longest=9)
    lists.add([("near", "x", "a", 1.0)])
    with pytest.raises(ValueError, match="unknown relation 'bad'"):
        lists.add([("near", "x", "b", 1.0), ("bad", "x", "c", 1.0)])
    assert lists.partners("near", "x") == {"a": 1.0}
