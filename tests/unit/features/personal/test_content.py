"""Content in the personal engine (features/personal/content.py): new items placed where
their look-alikes are, and the user's content taste in the for-you blend."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.core.items import Item
from pipeline.features.content.engine import ContentEngine
from pipeline.features.personal.content import ContentTaste
from pipeline.features.personal.engine import Engine
from pipeline.features.personal.mf import ImplicitMF
from tests.unit.features.personal.helpers import kitchen_and_garden, make_event

DIM = 8


def unit(*values: float) -> np.ndarray:
    vector = np.zeros(DIM, dtype=np.float32)
    vector[: len(values)] = values
    return vector / np.linalg.norm(vector)


def trained_model() -> ImplicitMF:
    model = ImplicitMF(n_factors=4, n_negatives=0)
    for n in range(30):
        model.learn_one("u1", "a", 1.0, key=f"a{n}")
        model.learn_one("u2", "b", 1.0, key=f"b{n}")
    return model


def test_a_new_item_starts_from_the_factors_of_the_items_its_text_is_like() -> None:
    model = trained_model()
    taste = ContentTaste(DIM)
    assert taste.update(model, {"a": unit(1, 0), "b": unit(0, 1)}) == []
    # Like a three times as much as b.
    new = unit(3, 1)
    assert taste.update(model, {"new": new}) == ["new"]
    a, b, added = (model.item_factors[model.item_index[i]] for i in ("a", "b", "new"))
    sim_a, sim_b = float(new @ unit(1, 0)), float(new @ unit(0, 1))
    expected = (sim_a * a + sim_b * b) / (sim_a + sim_b)
    assert np.allclose(added, expected, atol=1e-6)
    # Popularity is not in the text: the mean bias of the known items.
    count = len(model.item_ids)
    assert model.item_bias[model.item_index["new"]] == pytest.approx(
        float(model.item_bias[: count - 1].mean()), abs=1e-6
    )
    # Its row is drained (written) like a created item's, base = that start.
    delta, base = model.drain_deltas()["new"]
    assert base is not None and not np.frombuffer(delta, dtype="<f4").any()
    assert np.allclose(np.frombuffer(base, dtype="<f4")[2:], added)


def test_an_item_whose_text_shares_nothing_starts_from_noise_like_any_item() -> None:
    model = trained_model()
    taste = ContentTaste(DIM)
    taste.update(model, {"a": unit(1, 0), "b": unit(0, 1)})
    taste.update(model, {"odd": unit(0, 0, 1)})
    fresh = ImplicitMF(n_factors=4)
    fresh.add_item("odd")
    assert np.array_equal(
        model.item_factors[model.item_index["odd"]], fresh.item_factors[fresh.item_index["odd"]]
    )


def test_taste_scores_are_cosines_with_the_weighted_recent_items() -> None:
    model = trained_model()
    taste = ContentTaste(DIM)
    taste.update(model, {"a": unit(1, 0), "b": unit(0, 1), "c": unit(1, 1)})
    scores = taste.scores(model, ["a"], [1.0])
    assert scores is not None
    index = model.item_index
    assert scores[index["a"]] == pytest.approx(1.0)
    assert scores[index["b"]] == pytest.approx(0.0)
    assert scores[index["c"]] == pytest.approx(np.sqrt(0.5))
    # No anchor with a vector: no taste.
    assert taste.scores(model, ["unknown"], [1.0]) is None
    # An item that loses its text (unavailable) scores 0 and stops counting.
    taste.update(model, {"c": None})
    assert len(taste) == 2
    after = taste.scores(model, ["a"], [1.0])
    assert after is not None and after[index["c"]] == 0.0


def catalog_engine(weight: float) -> tuple[Engine, ContentEngine]:
    engine, content = kitchen_and_garden(content_taste_weight=weight)
    rng = np.random.default_rng(1)
    t = 0
    for user in range(20):
        group = "kg"[user % 2]
        for _ in range(6):
            t += 1000
            item = f"{group}{rng.integers(15)}"
            engine.learn(make_event("click", f"u{user}", item, t))
    engine.drain_changes()
    return engine, content


def test_a_new_item_like_a_users_items_enters_their_list_before_anyone_touches_it() -> None:
    engine, content = catalog_engine(1.0)
    newcomer = content.apply([Item("k-new", (), title="chef knife")]).vectors
    # Created a minute before the latest event: new.
    assert engine.set_content(newcomer, {"k-new": engine.now_ms - 60_000}) == ["k-new"]
    assert "k-new" in engine.drain_changes().item_deltas

    def place(engine: Engine, user: str) -> int:
        ranked = [r.item_id for r in engine.recommend(user, 40)]
        return ranked.index("k-new") if "k-new" in ranked else 40

    kitchen_user, garden_user = "u0", "u1"
    # Among the kitchen user's first twenty; not among the garden user's.
    new_place = place(engine, kitchen_user)
    assert new_place < 20 <= place(engine, garden_user)
    # The same item created long ago (or of unknown age) gets no lift: nobody touched it in
    # all that time, and its text says nothing of why.
    old = content.apply([Item("k-new", (), title="chef knife")]).vectors
    engine.set_content(old, {"k-new": engine.now_ms - 30 * 86_400_000})
    assert place(engine, kitchen_user) > new_place
    engine.set_created({"k-new": None})
    assert place(engine, kitchen_user) > new_place
    # Content off (the default): the engine knows nothing of the item until its first event.
    without, _ = catalog_engine(0.0)
    assert without.set_content(newcomer) == []
    assert place(without, kitchen_user) == 40 and "k-new" not in without.model.item_index


def test_items_joined_from_content_are_no_negatives_before_their_first_positive() -> None:
    engine, content = catalog_engine(1.0)
    model = engine.model
    assert model.negative_pool is not None
    newcomer = content.apply([Item("k-new", (), title="chef knife")]).vectors
    engine.set_content(newcomer, {"k-new": engine.now_ms})
    index = model.item_index["k-new"]
    assert index not in model.negative_pool
    drawn = {item for n in range(300) for item in model.sample_negatives("k1", 4, key=f"x{n}")}
    assert "k-new" not in drawn and len(drawn) > 10
    engine.learn(make_event("click", "u3", "k-new", engine.now_ms + 1000))
    assert index in model.negative_pool
    assert model.negative_pool == sorted(model.negative_pool)
    # A worker restoring this state rebuilds the same pool from the popularity counts.
    pool = list(model.negative_pool)
    engine.rebuild_negative_pool()
    assert model.negative_pool == pool
