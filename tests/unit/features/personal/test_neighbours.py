"""The neighbour index: partner arrays and popularity vectors stay equal to the counts they
mirror, however the counts were built (incrementally, or loaded by a restarted worker)."""

from __future__ import annotations

import numpy as np

from pipeline.core.events import event_from_dict
from pipeline.core.settings import load_settings
from pipeline.features.personal.config import personal_config
from pipeline.features.personal.engine import Engine
from pipeline.features.related.model import RELATIONS

T0 = 1_767_225_600_000


def click(n: int, user: str, item: str, event_type: str = "click") -> object:
    return event_from_dict(
        {
            "event_id": f"e{n}",
            "type": event_type,
            "user_id": user,
            "item_id": item,
            "timestamp": T0 + n * 1000,
        }
    )


def assert_mirrors_counts(engine: Engine) -> None:
    index = engine.neighbours
    ids = engine.model.item_ids
    for signal in ("click", "conversion"):
        vector = index.popularity_vector(signal)
        counts = engine.cooc.popularity[signal]
        assert [vector[i] for i in range(len(ids))] == [counts.get(item, 0.0) for item in ids]
    for relation in RELATIONS:
        for anchor, counts in engine.cooc.counts[relation].items():
            found = index.partners(relation, anchor)
            mirrored = (
                {}
                if found is None
                else {p: found.counts[slot] for p, slot in found.position.items()}
            )
            assert mirrored == {p: c for p, c in counts.items() if p in engine.model.item_index}
            if found is not None:
                assert np.array_equal(
                    found.indexes[: found.size],
                    [engine.model.item_index[p] for p in found.position],
                )


def test_popularity_of_items_that_join_the_model_after_their_first_count() -> None:
    """A new item's first click is counted before the item joins the factor model; its entry
    in the (pre-grown) popularity vector must still hold that count."""
    engine = Engine(personal_config(load_settings()))
    for n in range(1, 6):
        engine.learn(click(n, "u1", f"i{n}"))
    engine.recommend("u1", 5)  # grows the vectors beyond the items known so far
    engine.learn(click(10, "u2", "brand-new"))
    engine.learn(click(11, "u2", "brand-new", "buy"))
    assert_mirrors_counts(engine)


def test_partner_arrays_follow_the_counts_as_pairs_arrive() -> None:
    engine = Engine(personal_config(load_settings()))
    n = 0
    for round_ in range(4):
        for user in ("a", "b", "c"):
            for item in ("x", "y", "z", f"new{round_}"):
                n += 1
                engine.learn(click(n, user, item, "buy" if n % 5 == 0 else "click"))
            engine.recommend(user, 10)  # builds the arrays, which later pairs then update
        engine.drain_changes()
        assert_mirrors_counts(engine)
