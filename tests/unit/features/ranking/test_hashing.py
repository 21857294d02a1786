"""The fast paths of the click model equal the readable ones: indexes without names, and
AdaGrad over a batch of steps."""

from __future__ import annotations

import math
from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.features.ranking.features import features, observations
from pipeline.features.ranking.hashing import IndexedBatch
from pipeline.features.ranking.model import ClickModel

FAST = settings(max_examples=200, deadline=None, database=None)
# A time in 2026 (milliseconds).
T0 = 1_796_306_700_000
ids = st.from_regex(r"[\w.:@/+=-]{1,12}", fullmatch=True)
contexts = st.dictionaries(
    st.sampled_from(["device", "page", "locale", "position", "hour", "k=v"]),
    st.one_of(ids, st.integers(-100, 100), st.floats(-1e6, 1e6, allow_nan=False)),
    max_size=4,
)


def named_indexes(
    model: ClickModel, events: list, *args: object
) -> list[tuple[list[int], bool, float]]:
    """Each event's observations by their feature names, hashed one name at a time."""
    categories, impression_weight, click_weight, attributes_of_user, item_attributes = args
    return [
        (model.indexes(names), clicked, weight)
        for event in events
        for names, clicked, weight in observations(
            event,
            categories,
            impression_weight,
            click_weight,
            attributes_of_user.get(event.user_id, ()),
            item_attributes,
        )
    ]


def unflattened(batch: IndexedBatch) -> list[tuple[list[int], bool, float]]:
    bounds = batch.offsets.tolist()
    return [
        (batch.flat[bounds[o] : bounds[o + 1]].tolist(), bool(batch.clicked[o]), batch.weights[o])
        for o in range(len(bounds) - 1)
    ]


def event(kind: str, user: str, item: str | None, items: tuple, context: dict, ms: int):
    return SimpleNamespace(
        event_type=kind, user_id=user, item_id=item, items=items, context=context, timestamp_ms=ms
    )


events_strategy = st.lists(
    st.builds(
        event,
        st.sampled_from(["impression", "click", "click", "buy"]),
        st.sampled_from(["u1", "u2", "ü-3"]),
        st.none() | ids,
        st.lists(ids, max_size=5).map(tuple),
        contexts,
        st.integers(0, 4_000_000_000_000),
    ),
    max_size=8,
)


@FAST
@given(
    events_strategy,
    st.dictionaries(ids, st.lists(ids, max_size=3, unique=True), max_size=6),
    st.integers(0, 2**32 - 1),
    st.integers(8, 24),
    st.lists(st.from_regex(r"[a-z]{1,4}=[\w-]{1,6}", fullmatch=True), max_size=3, unique=True),
    st.dictionaries(
        ids, st.lists(st.from_regex(r"[a-z]{1,4}[=#][\w -]{1,6}", fullmatch=True), max_size=3)
    ),
    st.sampled_from([(0.3, 1.0), (0.0, 1.0), (0.3, 0.0)]),
)
def test_batch_indexes_equal_the_hashes_of_the_feature_names(
    events: list,
    categories: dict,
    seed: int,
    n_bits: int,
    attributes: list[str],
    item_attributes: dict,
    weights: tuple[float, float],
) -> None:
    model = ClickModel(n_bits=n_bits, seed=seed)
    indexer = model.indexer()
    # Categories of the shown items too, so that most items have some.
    for found in events:
        for item in found.items[:2]:
            categories.setdefault(item, ["c1", item])
    args = (categories, *weights, {"u2": tuple(attributes)}, item_attributes)
    expected = named_indexes(model, events, *args)
    assert unflattened(indexer.batch(events, *args)) == expected
    # Cached parts give the same answer the second time.
    assert unflattened(indexer.batch(events, *args)) == expected


def test_indexed_observations_equal_the_named_ones() -> None:
    model = ClickModel(seed=9)
    indexer = model.indexer()
    categories = {"a": ["x", "y"], "c": ["x"]}
    events = [
        event(
            "impression",
            "u1",
            None,
            ("a", "b", "c"),
            {"device": "mobile", "page": "home"},
            1_796_306_700_000,
        ),
        event("click", "u1", "c", (), {"device": "mobile", "position": 2}, 1_796_310_000_000),
        event("buy", "u1", "c", (), {}, 0),
        event("impression", "u1", None, (), {}, 0),
        event("click", "u1", "a", (), {"position": 11.0, "device": 3}, 1_796_310_000_000),
    ]
    item_attributes = {"a": ("brand=acme", "size#3"), "c": ("brand=zeta",)}
    for user_attributes in ({}, {"u1": ("country=DE", "vip=true")}):
        args = (categories, 0.3, 1.0, user_attributes, item_attributes)
        indexed = unflattened(indexer.batch(events, *args))
        assert len(indexed) == 5
        assert indexed == named_indexes(model, events, *args)
    # The crossed features are there when the user has attributes, and only then.
    crossed = observations(events[1], categories, 0.3, 1.0, ("country=DE",), item_attributes)
    assert "uattr_iattr=country=DE|brand=zeta" in crossed[0][0]
    plain = observations(events[1], categories, 0.3, 1.0, (), item_attributes)
    assert not any(name.startswith("uattr_iattr=") for name in plain[0][0])


def test_an_empty_batch_has_no_observations() -> None:
    batch = ClickModel().indexer().batch([], {}, 0.3, 1.0)
    assert batch.flat.shape == (0,) and batch.offsets.tolist() == [0]
    assert batch.clicked.shape == batch.weights.shape == (0,)


observation_lists = st.lists(
    st.tuples(
        st.lists(st.integers(0, 255), min_size=1, max_size=10),
        st.booleans(),
        st.floats(0.01, 3.0),
    ),
    max_size=40,
)


@FAST
@given(observation_lists, st.dictionaries(st.integers(0, 255), st.floats(-3, 3), max_size=30))
def test_learn_many_equals_one_learn_indexes_per_observation(steps, start) -> None:
    fast, slow = ClickModel(n_bits=8, l2=1e-3), ClickModel(n_bits=8, l2=1e-3)
    for model in (fast, slow):
        model.set_weights(start)
        model.set_sums({index: 1.0 for index in start})
    fast.learn_many(steps)
    for indexes, clicked, weight in steps:
        slow.learn_indexes(indexes, clicked, weight)
    assert fast.weights == slow.weights
    assert fast.drain_sum_deltas() == slow.drain_sum_deltas()
    assert fast.drain_deltas() == slow.drain_deltas()


def test_an_adagrad_step_shrinks_as_a_feature_accumulates_evidence() -> None:
    model = ClickModel(n_bits=8, learning_rate=0.5, l2=0.0)
    model.learn_many([([1], True, 1.0)])
    # First step: g = 0.5, n = 0.25, so w = 0.5 * 0.5 / 0.5.
    assert math.isclose(model.weights[1], 0.5)
    assert model.drain_sum_deltas() == {1: 0.25}
    steps = []
    for _ in range(200):
        before = model.weights[1]
        model.learn_many([([1], False, 1.0)])
        steps.append(before - model.weights[1])
    # Every negative lowers the weight, by less and less, and never past a sane bound.
    assert all(step > 0 for step in steps)
    assert steps[-1] < steps[0] / 5
    assert -10.0 < model.weights[1] < 0.0


def test_attribute_crosses_are_capped_per_observation_in_both_paths() -> None:
    from pipeline.features.ranking.features import MAX_ATTRIBUTE_CROSSES

    user_attributes = [f"u{k}=x" for k in range(16)]
    item_attributes = [f"i{k}=y" for k in range(8)]
    names = features("u", "item", ["c"], {}, None, user_attributes, item_attributes)
    crossed = [name for name in names if name.startswith("uattr_iattr=")]
    assert len(crossed) == MAX_ATTRIBUTE_CROSSES < 16 * 8
    assert crossed[0] == "uattr_iattr=u0=x|i0=y" and crossed[-1] == "uattr_iattr=u3=x|i7=y"
    model = ClickModel(seed=3)
    shown = event("click", "u", "item", (), {}, 0)
    args = ({"item": ["c"]}, 0.3, 1.0, {"u": tuple(user_attributes)}, {"item": item_attributes})
    indexed = unflattened(model.indexer().batch([shown], *args))
    named = named_indexes(model, [shown], *args)
    assert indexed == named
    assert all(index in indexed[0][0] for index in model.indexes(crossed))


def test_contexts_unique_per_request_keep_the_cache_small() -> None:
    """A context with a request id in it is new every time: the cached contexts (each up to
    about 15 KB) stay a few thousand, not the 200,000 entries of the small tables."""
    model = ClickModel(seed=5)
    indexer = model.indexer()
    shown = [
        event("click", "u", "a", (), {"request": f"r-{n}", "page": "home"}, T0 + n)
        for n in range(12_000)
    ]
    args = ({"a": ["c"]}, 0.3, 1.0, {}, {})
    indexer.batch(shown, *args)
    assert len(indexer._contexts) <= 10_000
    # Still the same indexes after the cache was emptied.
    assert unflattened(indexer.batch(shown[:3], *args)) == named_indexes(model, shown[:3], *args)
