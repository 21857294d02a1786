"""Words in the factor model (features/personal/words.py and its kernels): an item with text
counts as its own factors plus its words', learned from events, stored as deltas."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from pipeline.core.items import Item
from pipeline.core.keys import Keys
from pipeline.features.content.engine import ContentEngine
from pipeline.features.personal import state
from pipeline.features.personal.content import ContentTaste
from pipeline.features.personal.engine import Engine
from pipeline.features.personal.kernels import content_rows, content_sgd_step, sgd_step
from pipeline.features.personal.words import REFRESH_STEPS, WordFactors
from pipeline.store.base import Writes
from pipeline.store.memory import MemoryStore
from tests.unit.features.personal.helpers import kitchen_and_garden, make_event

K, DIM = 4, 8


def reference_step(
    item_factors: np.ndarray,
    item_bias: np.ndarray,
    user: np.ndarray,
    index: np.ndarray,
    labels: np.ndarray,
    weights: np.ndarray,
    rate: float,
    l2: float,
    content: np.ndarray,
    word_factors: np.ndarray,
    word_bias: np.ndarray,
    word_rate: float,
) -> np.ndarray:
    """The rule of ``content_sgd_step`` in numpy, in float64."""
    rows = np.zeros((len(index), content.shape[1]))
    for j, row in enumerate(index):
        if row < len(content):
            rows[j] = content[row]
    vectors = item_factors[index].astype(np.float64) + rows @ word_factors
    logits = vectors @ user + item_bias[index] + rows @ word_bias
    gradient = weights * (labels - 1.0 / (1.0 + np.exp(-np.clip(logits, -30, 30))))
    updated = user + rate * (gradient @ vectors - l2 * user)
    moves = rate * (gradient[:, None] * user[None, :] - l2 * item_factors[index])
    np.add.at(item_factors, index, moves)
    np.add.at(item_bias, index, rate * gradient)
    touched = rows.any(axis=0)
    sums = rows.T @ (gradient[:, None] * user[None, :])
    word_factors[touched] += word_rate * (sums[touched] - l2 * word_factors[touched])
    word_bias[touched] += word_rate * (rows.T @ gradient)[touched]
    return updated


def test_the_content_step_follows_its_rule() -> None:
    rng = np.random.default_rng(3)
    items = rng.normal(0, 0.3, (6, K)).astype(np.float32)
    bias = rng.normal(0, 0.3, 6).astype(np.float32)
    # Items 0-2 have text (sparse rows), 3 has a zero row, 4-5 lie past the matrix's end.
    content = np.zeros((4, DIM), dtype=np.float32)
    content[0, [1, 5]] = 0.6, 0.8
    content[1, [1, 2]] = 0.8, 0.6
    content[2, 7] = 1.0
    words = rng.normal(0, 0.3, (DIM, K)).astype(np.float32)
    word_bias = rng.normal(0, 0.3, DIM).astype(np.float32)
    user = rng.normal(0, 0.3, K).astype(np.float32)
    # Item 1 twice: both updates count.
    index = np.array([0, 1, 1, 3, 4, 2], dtype=np.int64)
    labels = np.array([1, 0, 0, 0, 0, 1], dtype=np.float32)
    weights = np.array([1, 0.5, 0.5, 1, 1, 2], dtype=np.float32)
    expected = [a.astype(np.float64) for a in (items, bias, words, word_bias)]
    want_user = reference_step(
        expected[0], expected[1], user.astype(np.float64), index, labels, weights, 0.1, 0.01,
        content, expected[2], expected[3], 0.05,
    )  # fmt: skip
    got_user = content_sgd_step(
        items, bias, user, index, labels, weights, 0.1, 0.01, content, words, word_bias, 0.05
    )
    for got, want in zip(
        (got_user, items, bias, words, word_bias), (want_user, *expected), strict=True
    ):
        assert np.allclose(got, want, atol=1e-5)
    # Buckets no item of the step holds did not move.
    assert words[0] == pytest.approx(expected[2][0])


def test_without_text_the_content_step_is_the_plain_step() -> None:
    rng = np.random.default_rng(4)
    items = rng.normal(0, 0.3, (5, K)).astype(np.float32)
    bias = rng.normal(0, 0.3, 5).astype(np.float32)
    user = rng.normal(0, 0.3, K).astype(np.float32)
    index = np.array([0, 2, 4], dtype=np.int64)
    labels = np.array([1, 0, 0], dtype=np.float32)
    weights = np.ones(3, dtype=np.float32)
    plain_items, plain_bias = items.copy(), bias.copy()
    plain = sgd_step(plain_items, plain_bias, user, index, labels, weights, 0.1, 0.01)
    words = np.zeros((DIM, K), dtype=np.float32)
    with_words = content_sgd_step(
        items, bias, user, index, labels, weights, 0.1, 0.01,
        np.zeros((5, DIM), dtype=np.float32), words, np.zeros(DIM, dtype=np.float32), 0.05,
    )  # fmt: skip
    assert np.array_equal(plain, with_words)
    assert np.array_equal(plain_items, items) and np.array_equal(plain_bias, bias)
    assert not words.any()


def test_content_rows_are_the_words_part_of_each_item() -> None:
    rng = np.random.default_rng(5)
    content = (rng.random((5, DIM)) < 0.3) * rng.random((5, DIM))
    content = content.astype(np.float32)
    content[3] = 0.0
    words = rng.normal(0, 1, (DIM, K)).astype(np.float32)
    word_bias = rng.normal(0, 1, DIM).astype(np.float32)
    factors = np.full((7, K), 9.0, dtype=np.float32)
    bias = np.full(7, 9.0, dtype=np.float32)
    rows, columns = np.nonzero(content)
    # Items 1 to 6: 3 has no text, 5 and 6 lie past the content's end (no words).
    content_rows(rows, columns, content[rows, columns], words, word_bias, 1, 7, factors, bias)
    assert np.allclose(factors[1:5], content[1:5] @ words, atol=1e-5)
    assert np.allclose(bias[1:5], content[1:5] @ word_bias, atol=1e-5)
    assert not factors[5:].any() and not bias[5:].any()
    # Outside the range: untouched.
    assert (factors[0] == 9.0).all() and bias[0] == 9.0


def trained_words(steps: int = 3) -> tuple[WordFactors, ContentTaste]:
    taste = ContentTaste(DIM)
    taste.matrix[:3] = 0.0
    taste.matrix[0, 1] = taste.matrix[1, 2] = 1.0
    words = WordFactors(taste, K, 0.1)
    items = np.full((3, K), 0.1, dtype=np.float32)
    bias = np.zeros(3, dtype=np.float32)
    user = np.full(K, 0.2, dtype=np.float32)
    for _ in range(steps):
        words.step(
            items, bias, user, np.array([0, 1, 2]),
            np.array([1, 0, 0], np.float32), np.ones(3, np.float32), 0.1, 0.0,
        )  # fmt: skip
    return words, taste


def test_drained_word_deltas_rebuild_the_rows_in_the_store_and_restore_them() -> None:
    words, taste = trained_words()
    deltas = words.drain_deltas()
    # Only the buckets the items' texts hold moved.
    assert sorted(deltas) == ["1", "2"]
    assert words.drain_deltas() == {}
    store, keys = MemoryStore(), Keys("t")
    asyncio.run(store.apply(Writes().hadd_vectors(keys.mf_words(), deltas)))
    stored = asyncio.run(store.hgetall(keys.mf_words()))
    again = WordFactors(taste, K, 0.1)
    again.restore({bucket.decode(): row for bucket, row in stored.items()})
    assert np.array_equal(again.factors, words.factors)
    assert np.array_equal(again.bias, words.bias)
    # A second drain after more learning adds up to the local rows again.
    words.step(
        np.full((3, K), 0.1, np.float32), np.zeros(3, np.float32), np.full(K, 0.2, np.float32),
        np.array([1]), np.array([1], np.float32), np.ones(1, np.float32), 0.1, 0.0,
    )  # fmt: skip
    asyncio.run(store.apply(Writes().hadd_vectors(keys.mf_words(), words.drain_deltas())))
    stored = asyncio.run(store.hgetall(keys.mf_words()))
    row = np.frombuffer(stored[b"2"], dtype="<f4")
    assert row[0] == words.bias[2] and np.array_equal(row[1:], words.factors[2])


def test_restore_ignores_rows_of_another_shape_or_bucket() -> None:
    words, taste = trained_words(0)
    good = np.arange(K + 1, dtype="<f4").tobytes()
    words.restore({"3": good, "99": good, "x": good, "4": good[:-4]})
    assert words.bias[3] == 0.0 and np.array_equal(words.factors[3], np.arange(1, K + 1))
    assert not words.factors[4].any() and not words.bias[4]


def test_the_words_part_of_items_is_kept_until_the_words_moved_enough() -> None:
    words, taste = trained_words(1)
    first, _ = words.item_part(3)
    kept = first.copy()
    assert np.allclose(kept[0], words.factors[1]) and not kept[2].any()
    # A changed text is taken at once.
    taste.matrix[2, 1] = 1.0
    words.changed([2])
    assert np.allclose(words.item_part(3)[0][2], words.factors[1])
    # Learning moves the words; the kept part stays until REFRESH_STEPS steps since it
    # was computed.
    user = np.full(K, 0.2, dtype=np.float32)
    for _ in range(REFRESH_STEPS):
        assert np.array_equal(words.item_part(3)[0][0], kept[0])
        words.step(
            np.full((3, K), 0.1, np.float32), np.zeros(3, np.float32), user,
            np.array([0]), np.array([1], np.float32), np.ones(1, np.float32), 0.1, 0.0,
        )  # fmt: skip
    assert np.allclose(words.item_part(3)[0][0], words.factors[1])
    assert not np.allclose(words.factors[1], kept[0])


def word_engine(rate: float) -> tuple[Engine, ContentEngine]:
    """Users who buy kitchen items and users who buy garden items, all with text."""
    engine, content = kitchen_and_garden(content_factor_rate=rate)
    rng = np.random.default_rng(1)
    t = 0
    for _ in range(10):
        for user in range(20):
            group = "kg"[user % 2]
            t += 1000
            engine.learn(make_event("buy", f"u{user}", f"{group}{rng.integers(15)}", t))
    engine.drain_changes()
    return engine, content


def test_an_untouched_item_scores_by_what_its_words_mean_to_the_user() -> None:
    engine, content = word_engine(0.1)
    vectors = content.apply(
        [Item("k-new", (), title="chef knife"), Item("g-new", (), title="green hose")]
    ).vectors
    assert sorted(engine.set_content(vectors)) == ["g-new", "k-new"]

    def gap(engine: Engine, user: str) -> float:
        scores = engine.model.score_all(user)
        index = engine.model.item_index
        return float(scores[index["k-new"]] - scores[index["g-new"]])

    # Kitchen users score the new knife above the new hose, garden users the other way:
    # on average by far, and nearly every user (ten buys each teach a user little).
    kitchen = np.array([gap(engine, f"u{u}") for u in range(0, 20, 2)])
    garden = np.array([gap(engine, f"u{u}") for u in range(1, 20, 2)])
    assert kitchen.mean() > 0.5 and garden.mean() < -0.5
    assert (kitchen > 0).sum() >= 8 and (garden < 0).sum() >= 8
    # The words were written with the batch.
    assert engine.model.words is not None and engine.model.words.factors.any()
    # Words off (rate 0, no taste weight): the engine takes no content at all.
    without, _ = word_engine(0.0)
    assert without.set_content(vectors) == [] and without.model.words is None


def test_word_rows_are_written_loaded_and_refreshed_with_the_items() -> None:
    engine, content = word_engine(0.2)
    store, keys = MemoryStore(), Keys("t")
    changes = engine.drain_changes()
    assert changes.word_deltas == {}  # drained already by word_engine
    engine.learn(make_event("buy", "u0", "k1", 10**7))
    changes = engine.drain_changes()
    assert changes.word_deltas
    asyncio.run(store.apply(state.changes_writes(engine, changes, keys, 3600)))
    stored = asyncio.run(store.hgetall(keys.mf_words()))
    assert sorted(b.decode() for b in stored) == sorted(changes.word_deltas)
    # A worker that starts loads them (the other buckets are zeros, as they started).
    fresh, _ = word_engine(0.2)
    fresh.model.words.factors[:] = 0.0  # type: ignore[union-attr]
    fresh.model.words.bias[:] = 0.0  # type: ignore[union-attr]
    asyncio.run(state.load_items(store, keys, fresh, 10**7))
    for bucket, raw in stored.items():
        row = np.frombuffer(raw, dtype="<f4")
        assert np.array_equal(fresh.model.words.factors[int(bucket)], row[1:])  # type: ignore[union-attr]
    # Another worker's learning reaches this one's rows of the batch's items.
    other = np.frombuffer(stored[next(iter(stored))], dtype="<f4").copy()
    bucket = next(iter(stored)).decode()
    asyncio.run(
        store.apply(
            Writes().hadd_vectors(keys.mf_words(), {bucket: (np.ones_like(other).tobytes(), None)})
        )
    )
    items = [i for i in engine.model.item_ids if bucket in engine.word_buckets([i])]
    asyncio.run(state.refresh_items(store, keys, engine, items[:1]))
    assert np.allclose(engine.model.words.factors[int(bucket)], other[1:] + 1)  # type: ignore[union-attr]


def test_the_words_part_follows_texts_that_join_change_and_go() -> None:
    rng = np.random.default_rng(8)
    taste = ContentTaste(DIM)
    words = WordFactors(taste, K, 0.1)
    words.factors[:] = rng.normal(0, 1, (DIM, K))
    words.bias[:] = rng.normal(0, 1, DIM)
    count = 0
    for _ in range(60):
        # Items join (some with text), and known items' texts change or go.
        joined = int(rng.integers(0, 4))
        taste._fit(count + joined)
        changed = []
        if count + joined and rng.random() < 0.3:
            changed = [int(i) for i in rng.integers(0, count + joined, 3)]
        for index in list(range(count, count + joined)) + changed:
            row = (rng.random(DIM) < 0.3) * rng.random(DIM) if rng.random() < 0.7 else 0.0
            taste.matrix[index] = row
        count += joined
        words.changed(changed)
        factors, bias = words.item_part(count)
        expected = taste.matrix[:count].astype(np.float64)
        assert np.allclose(factors, expected @ words.factors, atol=1e-5)
        assert np.allclose(bias, expected @ words.bias, atol=1e-5)
