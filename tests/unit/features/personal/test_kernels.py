"""The compiled kernels of the personal engine equal the same formulas in numpy: the factor
model's SGD step, the neighbour scores' totals (bit for bit; lists in the co-occurrence
arena's item numbers, some of items the model does not know) the anchors that led to an item,
the best items of a list and the normal draws of new ids' vectors."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.features.personal.kernels import (
    first_anchors,
    neighbour_totals,
    normal_from_words,
    sgd_step,
    top_indexes,
)


def numpy_step(
    factors: np.ndarray,
    bias: np.ndarray,
    user: np.ndarray,
    index: np.ndarray,
    labels: np.ndarray,
    weights: np.ndarray,
    rate: float,
    l2: float,
) -> np.ndarray:
    """The rule written with numpy on whole arrays: logistic loss, gradients at the values
    before the step, an item listed twice updated twice (``np.add.at``)."""
    rows = factors[index]
    logits = np.clip(rows @ user + bias[index], -30.0, 30.0)
    gradient = weights * (labels - 1.0 / (1.0 + np.exp(-logits)))
    updated = user + rate * (gradient @ rows - l2 * user)
    np.add.at(factors, index, rate * (gradient[:, None] * user - l2 * rows))
    np.add.at(bias, index, rate * gradient)
    return updated


@pytest.mark.parametrize("index", [[3, 0, 7, 1, 5], [2, 2, 4], [6]])
def test_the_compiled_step_is_the_numpy_rule(index: list[int]) -> None:
    rng = np.random.default_rng(len(index))
    factors = rng.normal(0, 0.3, (8, 32)).astype(np.float32)
    bias = rng.normal(0, 0.5, 8).astype(np.float32)
    user = rng.normal(0, 0.3, 32).astype(np.float32)
    positions = np.array(index, dtype=np.int64)
    labels = np.array([1.0] + [0.0] * (len(index) - 1), dtype=np.float32)
    weights = rng.uniform(0.2, 2.0, len(index)).astype(np.float32)
    expected_factors, expected_bias = factors.copy(), bias.copy()
    expected = numpy_step(
        expected_factors, expected_bias, user, positions, labels, weights, 0.1, 0.002
    )
    updated = sgd_step(factors, bias, user, positions, labels, weights, 0.1, 0.002)
    assert updated.dtype == np.float32
    np.testing.assert_allclose(updated, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(factors, expected_factors, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bias, expected_bias, rtol=1e-5, atol=1e-6)
    # Rows not in the step are left as they were.
    untouched = sorted(set(range(8)) - set(index))
    assert np.array_equal(factors[untouched], expected_factors[untouched])


def test_extreme_scores_do_not_overflow() -> None:
    factors = np.full((2, 4), 100.0, dtype=np.float32)
    bias = np.zeros(2, dtype=np.float32)
    user = np.full(4, 100.0, dtype=np.float32)
    index = np.array([0, 1], dtype=np.int64)
    with np.errstate(all="raise"):
        updated = sgd_step(
            factors,
            bias,
            user,
            index,
            np.array([1.0, 0.0], np.float32),
            np.ones(2, np.float32),
            0.1,
            0.0,
        )
    assert np.isfinite(updated).all() and np.isfinite(factors).all()


def numpy_totals(
    index: np.ndarray,
    counts: np.ndarray,
    lengths: np.ndarray,
    scales: np.ndarray,
    signals: np.ndarray,
    rows: np.ndarray,
    discounts: tuple[np.ndarray, ...],
    n_items: int,
    n_rows: int,
) -> np.ndarray:
    """The rule in vector steps: discount, each list's best (a best of 0 or less counts 1),
    scaled, summed per row with bincount, rows summed."""
    entry_signal = np.repeat(signals, lengths)
    discount = np.where(entry_signal == 0, discounts[0][index], discounts[1][index])
    values = counts / discount
    starts = np.cumsum(lengths) - lengths
    best = np.maximum.reduceat(values, starts)
    best[best <= 0] = 1.0
    values = values * np.repeat(scales / best, lengths)
    row = np.repeat(rows, lengths)
    total = np.bincount(index + row * n_items, values, minlength=n_rows * n_items)
    return total[: n_rows * n_items].reshape(n_rows, n_items).sum(axis=0)


@pytest.mark.parametrize("seed", range(6))
def test_the_compiled_neighbour_totals_are_the_numpy_rule(seed: int) -> None:
    """Random partner lists over a few items (so items repeat across lists and rows), counts
    with zeros and negatives (a list whose best is not positive), both signals."""
    rng = np.random.default_rng(seed)
    n_items, n_rows = 40, 3
    n_lists = int(rng.integers(1, 25))
    lengths = rng.integers(1, 30, n_lists).astype(np.int64)
    index = rng.integers(0, n_items, int(lengths.sum())).astype(np.int64)
    counts = rng.integers(-1, 6, len(index)).astype(np.float64)
    counts[: int(lengths[0])] = -rng.random(int(lengths[0]))  # a list with no positive count
    scales = rng.uniform(0.05, 2.0, n_lists)
    signals = rng.integers(0, 2, n_lists).astype(np.int64)
    rows = np.sort(rng.integers(0, n_rows, n_lists)).astype(np.int64)
    discounts = (rng.uniform(1, 9, n_items), rng.uniform(1, 9, n_items))
    expected = numpy_totals(
        index, counts, lengths, scales, signals, rows, discounts, n_items, n_rows
    )
    assert np.count_nonzero(expected) > 10
    numbers, held, sizes, model_of = numbered(rng, index, counts, lengths, n_items)
    partner, count, starts = scattered(rng, numbers, held, sizes)
    args = (partner, count, model_of, starts, sizes, scales, signals, rows, discounts)
    assert np.array_equal(neighbour_totals(*args, n_items, n_rows), expected)


def numbered(
    rng: np.random.Generator,
    index: np.ndarray,
    counts: np.ndarray,
    lengths: np.ndarray,
    n_items: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The lists of model indexes ``index`` as the co-occurrence arena holds them: in item
    numbers (a shuffle of the indexes), with entries of items the model does not know
    mixed in (number -> -1), their counts larger than any (they would lead their lists if
    read). Returns (numbers, counts, lengths, model_of)."""
    n_unknown = 7
    order = rng.permutation(n_items + n_unknown)
    model_of = np.full(n_items + n_unknown, -1, dtype=np.int64)
    model_of[order[:n_items]] = np.arange(n_items)
    unknown = order[n_items:].tolist()
    numbers: list[int] = []
    held: list[float] = []
    sizes: list[int] = []
    begin = 0
    for length in lengths.tolist():
        entries = [
            (int(order[i]), float(c))
            for i, c in zip(
                index[begin : begin + length], counts[begin : begin + length], strict=True
            )
        ]
        begin += length
        for _ in range(int(rng.integers(0, 3))):
            entries.insert(int(rng.integers(0, len(entries) + 1)), (rng.choice(unknown), 1000.0))
        numbers += [number for number, _ in entries]
        held += [count for _, count in entries]
        sizes.append(len(entries))
    return (
        np.array(numbers, dtype=np.int64),
        np.array(held),
        np.array(sizes, dtype=np.int64),
        model_of,
    )


def scattered(
    rng: np.random.Generator, index: np.ndarray, counts: np.ndarray, lengths: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The lists joined in ``index`` and ``counts`` laid out as an arena holds them: each in
    a block of its own, the blocks in another order, with unused entries between them."""
    joined_starts = np.cumsum(lengths) - lengths
    order = rng.permutation(len(lengths))
    partner = np.full(3 * len(index) + 10, 10**6, dtype=np.int64)  # no item: never read
    count = np.full(len(partner), np.nan)
    starts = np.zeros(len(lengths), dtype=np.int64)
    at = 1
    for number in order.tolist():
        length, begin = int(lengths[number]), int(joined_starts[number])
        starts[number] = at
        partner[at : at + length] = index[begin : begin + length]
        count[at : at + length] = counts[begin : begin + length]
        at += length + int(rng.integers(0, 3))
    return partner, count, starts


@pytest.mark.parametrize(("seed", "limit"), [(0, 3), (1, 1), (2, 5), (3, 3)])
def test_first_anchors_are_each_items_lowest_ranks(seed: int, limit: int) -> None:
    """Entries repeat (an item partner of one anchor in several relations), served items
    include ones no anchor holds and one beyond every index."""
    rng = np.random.default_rng(seed)
    n_anchors = 10
    lengths = rng.integers(0, 40, 20).astype(np.int64)
    index = rng.integers(0, 60, int(lengths.sum())).astype(np.int64)
    list_ranks = rng.integers(0, n_anchors, len(lengths)).astype(np.int64)
    ranks = np.repeat(list_ranks, lengths)
    served = np.array([*rng.choice(60, 20, replace=False), 75], dtype=np.int64)
    numbers, held, sizes, model_of = numbered(rng, index, np.zeros(len(index)), lengths, 60)
    partner, _, starts = scattered(rng, numbers, held, sizes)
    first = first_anchors(partner, model_of, starts, sizes, list_ranks, served, n_anchors, limit)
    for row, item in zip(first.tolist(), served.tolist(), strict=True):
        held = sorted({r for i, r in zip(index.tolist(), ranks.tolist(), strict=True) if i == item})
        assert row == held[:limit] + [-1] * (limit - len(held[:limit]))
    assert (first >= 0).sum() >= 20


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("n", [1, 5, 50, 400])
def test_top_indexes_are_the_best_scores_ties_by_index_without_excluded(seed: int, n: int) -> None:
    """The rule: sort by (-score, index), drop -inf, keep ``n``; with ties at the cut (few
    distinct values), excluded items, and fewer finite scores than ``n``."""
    rng = np.random.default_rng(seed)
    size = int(rng.integers(1, 300))
    scores = rng.integers(0, 6, size).astype(np.float64) / 3.0  # many ties
    if seed % 2:
        scores += rng.normal(0, 1.0, size)
    scores[rng.random(size) < 0.3] = -np.inf
    expected = sorted(
        (i for i in range(size) if scores[i] != -np.inf), key=lambda i: (-scores[i], i)
    )
    assert top_indexes(scores, n).tolist() == expected[:n]


def test_top_indexes_of_nothing_and_of_only_excluded_items() -> None:
    assert top_indexes(np.zeros(0), 5).tolist() == []
    assert top_indexes(np.full(4, -np.inf), 3).tolist() == []
    assert top_indexes(np.array([1.0, 2.0]), 0).tolist() == []


@pytest.mark.parametrize("n", [1, 10, 50])
def test_top_indexes_of_rising_scores_and_of_a_large_catalog(n: int) -> None:
    """Scores rising along the vector (every item would be kept on arrival: the selection
    hands over to the partition) and a catalog of 20,000 items with ties and excluded ones:
    the same rule, sort by (-score, index) without -inf."""
    rng = np.random.default_rng(n)
    rising = np.arange(5000, dtype=np.float64)
    rising[::7] = -np.inf
    large = np.round(rng.random(20_000), 3)
    large[rng.random(20_000) < 0.1] = -np.inf
    for scores in (rising, large, rising.astype(np.float32)):
        expected = sorted(
            (i for i in range(len(scores)) if scores[i] != -np.inf),
            key=lambda i: (-scores[i], i),
        )
        assert top_indexes(scores, n).tolist() == expected[:n]


@pytest.mark.parametrize("n", [1, 5, 32])
def test_normal_from_words_is_box_muller_of_the_words(n: int) -> None:
    """The first half of the words give the radii, the second the angles; cos then sin."""
    words = np.random.default_rng(n).integers(0, 2**32, 2 * ((n + 1) // 2)).astype("<u4")
    uniform = (words.astype(np.float64) + 0.5) / 2**32
    pairs = len(words) // 2
    radius = np.sqrt(-2.0 * np.log(uniform[:pairs]))
    angle = 2.0 * np.pi * uniform[pairs:]
    expected = 0.3 * np.concatenate((radius * np.cos(angle), radius * np.sin(angle)))[:n]
    found = normal_from_words(words, n, 0.3)
    assert found.dtype == np.float32
    np.testing.assert_allclose(found, expected.astype(np.float32), rtol=1e-6)
    extreme = normal_from_words(np.array([0, 0, 2**32 - 1, 2**32 - 1], dtype="<u4"), 4, 1.0)
    assert np.isfinite(extreme).all()
