"""The partner arena: lists kept in blocks of shared arrays hold exactly what a dictionary per
list holds, through growth (blocks that move), drops and reclaims."""

from __future__ import annotations

import random

import numpy as np
import pytest

from pipeline.features.personal.arena import PartnerArena


def held(arena: PartnerArena, row: int) -> dict[int, float]:
    partners, counts = arena.view(row)
    assert len(set(partners.tolist())) == len(partners)  # each partner once
    return dict(zip(partners.tolist(), counts.tolist(), strict=True))


@pytest.mark.parametrize("seed", range(4))
def test_lists_hold_what_dictionaries_hold(seed: int) -> None:
    """Random lists built, set (new partners and known ones, several per call, one list
    more than once), dropped and built again, from an arena small enough to move and
    reclaim blocks many times."""
    rng = random.Random(seed)
    arena = PartnerArena(entries=64)
    expected: dict[int, dict[int, float]] = {}
    for _ in range(400):
        action = rng.random()
        if action < 0.15 or not expected:
            partners = rng.sample(range(500), rng.randrange(0, 40))
            counts = [float(rng.randrange(1, 9)) for _ in partners]
            row = arena.new(partners, counts)
            assert row not in expected
            expected[row] = dict(zip(partners, counts, strict=True))
        elif action < 0.25:
            row = rng.choice(list(expected))
            arena.drop(row)
            del expected[row]
        else:
            rows, partners, values = [], [], []
            for _ in range(rng.randrange(1, 60)):
                row = rng.choice(list(expected))
                partner = rng.randrange(500)
                value = float(rng.randrange(0, 50))
                rows.append(row)
                partners.append(partner)
                values.append(value)
                expected[row][partner] = value
            arena.set(rows, partners, values)
        for row, want in expected.items():
            assert held(arena, row) == want
    assert len(arena.partner) > 64  # the arena grew


def test_a_view_handed_out_is_not_overwritten_by_moves_and_reclaims() -> None:
    """What a reader holds (``Attribution`` keeps the arrays of one scoring) stays as it was
    while other lists are built and grow: a move or reclaim writes into new blocks and new
    arrays only."""
    arena = PartnerArena(entries=32)
    row = arena.new([1, 2, 3], [1.0, 2.0, 3.0])
    partners, counts = arena.view(row)
    before = (partners.copy(), counts.copy())
    for k in range(50):
        other = arena.new(list(range(100, 100 + k)), [1.0] * k)
        arena.set([other] * 40, list(range(200, 240)), [2.0] * 40)
    assert np.array_equal(partners, before[0]) and np.array_equal(counts, before[1])
    assert held(arena, row) == {1: 1.0, 2: 2.0, 3: 3.0}


def test_an_arena_made_empty_grows() -> None:
    """No entries to start with: the first list still finds a block (the size doubles from
    a block, not from nothing)."""
    arena = PartnerArena(entries=0)
    row = arena.new([4, 5], [1.0, 2.0])
    arena.set([row] * 3, [6, 7, 8], [3.0, 4.0, 5.0])
    assert held(arena, row) == {4: 1.0, 5: 2.0, 6: 3.0, 7: 4.0, 8: 5.0}


def test_setting_into_a_dropped_list_is_an_error_not_an_endless_growth() -> None:
    """A dropped list has no block (capacity 0): doubling it would never make room."""
    arena = PartnerArena()
    kept, dropped = arena.new([1], [1.0]), arena.new([2], [1.0])
    arena.drop(dropped)
    with pytest.raises(ValueError, match="dropped"):
        arena.set([kept, dropped], [3, 4], [1.0, 1.0])
    assert held(arena, kept) == {1: 1.0}  # nothing set
