"""Content neighbours (pipeline.features.content.neighbours and engine): an item with the same
words as another is its nearest neighbour, and lists kept incrementally equal lists computed
from scratch after any sequence of arrivals, changes and removals."""

from __future__ import annotations

import random

import numpy as np
import pytest

from pipeline.core.items import Item, item_from_dict
from pipeline.features.content.engine import ContentConfig, ContentEngine
from pipeline.features.content.neighbours import ContentIndex

CONFIG = ContentConfig(
    dim=256, text_fields=("title", "description"), neighbours=3, min_similarity=0.05
)
WORDS = [
    "red",
    "blue",
    "green",
    "wool",
    "leather",
    "shoe",
    "hat",
    "scarf",
    "trail",
    "running",
    "winter",
    "summer",
    "soft",
    "warm",
]


def item(item_id: str, title: str, **fields: object) -> Item:
    return item_from_dict({"item_id": item_id, "title": title, **fields})


def brute_force(index: ContentIndex, item_id: str) -> list[tuple[str, float]]:
    """The item's list computed from scratch over the index's current vectors."""
    mine = index.vector(item_id)
    assert mine is not None
    scored = []
    for other in index.row_of:
        if other == item_id:
            continue
        vector = index.vector(other)
        assert vector is not None
        score = float(mine @ vector)
        if score >= index.min_similarity:
            scored.append((other, score))
    scored.sort(key=lambda entry: -entry[1])
    return scored[: index.k]


def assert_lists_exact(index: ContentIndex) -> None:
    for item_id in index.row_of:
        expected = brute_force(index, item_id)
        found = index.neighbours(item_id)
        assert [s for _, s in found] == pytest.approx([s for _, s in expected], abs=1e-5)
        if not expected:
            assert found == []
            continue
        # Ties at the K-th place may differ; the items ranked clearly above it agree.
        cut = expected[-1][1] + 1e-5
        assert {i for i, s in found if s > cut} == {i for i, s in expected if s > cut}


def test_an_item_with_the_same_words_is_the_nearest_neighbour() -> None:
    engine = ContentEngine(CONFIG)
    engine.apply(
        [
            item("shoe", "red leather running shoe"),
            item("hat", "blue wool winter hat"),
            item("scarf", "green wool scarf"),
            item("boot", "leather winter boot"),
        ]
    )
    update = engine.apply([item("twin", "Running shoe, red LEATHER")])
    assert engine.index.neighbours("twin")[0][0] == "shoe"
    assert engine.index.neighbours("shoe")[0][0] == "twin"
    # The arrival entered its neighbour's list; both lists are in the update.
    assert {"twin", "shoe"} <= set(update.lists)
    assert update.lists["twin"][0] == ("shoe", pytest.approx(engine.index.neighbours("twin")[0][1]))


def test_lists_are_sorted_bounded_and_exclude_the_item_and_weak_matches() -> None:
    engine = ContentEngine(CONFIG)
    engine.apply([item(f"i{n}", f"red shoe model{n}") for n in range(8)] + [item("x", "violin")])
    for item_id in engine.index.row_of:
        found = engine.index.neighbours(item_id)
        assert len(found) <= CONFIG.neighbours
        assert all(other != item_id for other, _ in found)
        scores = [score for _, score in found]
        assert scores == sorted(scores, reverse=True)
        assert all(score >= CONFIG.min_similarity for score in scores)
    assert engine.index.neighbours("x") == []


def test_unavailable_items_and_items_without_text_leave_every_list() -> None:
    engine = ContentEngine(CONFIG)
    engine.apply([item("a", "red shoe"), item("b", "red shoe trail"), item("c", "red hat")])
    assert "a" in dict(engine.index.neighbours("b"))
    update = engine.apply([item("a", "red shoe", available=False)])
    assert update.left == {"a"} and update.vectors == {"a": None}
    assert "a" not in engine.index and "a" not in dict(engine.index.neighbours("b"))
    assert {"b", "c"} <= set(update.lists)
    update = engine.apply([item_from_dict({"item_id": "b"})])
    assert update.left == {"b"}
    # An item that never had text changes nothing stored.
    assert engine.apply([item_from_dict({"item_id": "z"})]).vectors == {}


def test_a_changed_text_moves_the_item_between_lists() -> None:
    engine = ContentEngine(CONFIG)
    engine.apply([item("shoe", "red shoe"), item("hat", "wool hat"), item("x", "red shoe trail")])
    assert engine.index.neighbours("x")[0][0] == "shoe"
    engine.apply([item("shoe", "wool hat warm")])
    assert engine.index.neighbours("hat")[0][0] == "shoe"
    assert "shoe" not in dict(engine.index.neighbours("x"))


def test_document_frequencies_equal_a_recount_after_changes() -> None:
    engine = ContentEngine(CONFIG)
    engine.apply([item("a", "red shoe"), item("b", "blue hat"), item("a", "green scarf")])
    engine.apply([item("b", "blue hat", available=False), item("c", "red red shoe")])
    fresh = ContentEngine(CONFIG)
    fresh.apply([item("a", "green scarf"), item("c", "red red shoe")])
    assert engine.df.documents == fresh.df.documents == 2
    assert np.array_equal(engine.df.counts, fresh.df.counts)


@pytest.mark.parametrize("seed", range(6))
def test_incremental_lists_equal_lists_from_scratch(seed: int) -> None:
    rng = random.Random(seed)
    engine = ContentEngine(ContentConfig(64, ("title",), 4, 0.05))
    for _ in range(12):
        batch = []
        for _ in range(rng.randint(1, 9)):
            item_id = f"i{rng.randint(0, 30)}"
            if rng.random() < 0.15:
                batch.append(item(item_id, "x", available=False))
            else:
                batch.append(item(item_id, " ".join(rng.sample(WORDS, rng.randint(1, 4)))))
        engine.apply(batch)
        assert_lists_exact(engine.index)


def test_many_rows_in_one_batch_span_several_blocks() -> None:
    engine = ContentEngine(ContentConfig(64, ("title",), 3, 0.05))
    rng = random.Random(3)
    engine.apply([item(f"i{n}", " ".join(rng.sample(WORDS, 3))) for n in range(150)])
    assert len(engine.index) == 150
    assert_lists_exact(engine.index)


def test_load_restores_the_same_lists() -> None:
    engine = ContentEngine(CONFIG)
    engine.apply([item(f"i{n}", f"{WORDS[n % 5]} {WORDS[n % 7]} shoe") for n in range(12)])
    vectors = {i: engine.index.vector(i) for i in engine.index.row_of}
    lists = {i: engine.index.neighbours(i) for i in engine.index.row_of}
    restored = ContentEngine(CONFIG)
    restored.load(vectors, lists, enumerate(engine.df.counts.tolist()), engine.df.documents)  # type: ignore[arg-type]
    assert {i: restored.index.neighbours(i) for i in vectors} == lists
    # It goes on exactly as the original does.
    arrival = [item("new", "red shoe winter")]
    assert restored.apply(arrival).lists == engine.apply(arrival).lists
