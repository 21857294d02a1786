"""The fast paths of the click model equal the readable ones: indexes without names, and
AdaGrad over a batch of steps."""

from __future__ import annotations

import math
from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.features.ranking.features import features, observations
from pipeline.features.ranking.model import ClickModel

FAST = settings(max_examples=200, deadline=None, database=None)
ids = st.from_regex(r"[\w.:@/+=-]{1,12}", fullmatch=True)
contexts = st.dictionaries(
    st.sampled_from(["device", "page", "locale", "position", "hour", "k=v"]),
    st.one_of(ids, st.integers(-100, 100), st.floats(-1e6, 1e6, allow_nan=False)),
    max_size=4,
)


@FAST
@given(
    ids,
    ids,
    st.lists(ids, max_size=3, unique=True),
    contexts,
    st.none() | st.integers(0, 300),
    st.integers(0, 2**32 - 1),
    st.integers(8, 24),
    st.lists(st.from_regex(r"[a-z]{1,4}=[\w-]{1,6}", fullmatch=True), max_size=3, unique=True),
    st.lists(st.from_regex(r"[a-z]{1,4}[=#][\w -]{1,6}", fullmatch=True), max_size=3, unique=True),
)
def test_indexes_equal_the_hashes_of_the_feature_names(
    user: str,
    item: str,
    categories: list[str],
    context: dict,
    position: int | None,
    seed: int,
    n_bits: int,
    attributes: list[str],
    item_attributes: list[str],
) -> None:
    model = ClickModel(n_bits=n_bits, seed=seed)
    indexer = model.indexer()
    parts = indexer.event(user, context, attributes)
    named = features(user, item, categories, context, position, attributes, item_attributes)
    expected = model.indexes(named)
    assert indexer.indexes(parts, item, categories, position, item_attributes) == expected
    # Cached parts give the same answer the second time.
    again = indexer.event(user, context, attributes)
    assert indexer.indexes(again, item, categories, position, item_attributes) == expected


def test_indexed_observations_equal_the_named_ones() -> None:
    model = ClickModel(seed=9)
    indexer = model.indexer()
    categories = {"a": ["x", "y"], "c": ["x"]}
    events = [
        SimpleNamespace(
            event_type="impression",
            user_id="u1",
            item_id=None,
            items=("a", "b", "c"),
            context={"device": "mobile", "page": "home"},
            timestamp_ms=1_796_306_700_000,
        ),
        SimpleNamespace(
            event_type="click",
            user_id="u1",
            item_id="c",
            items=(),
            context={"device": "mobile", "position": 2},
            timestamp_ms=1_796_310_000_000,
        ),
        SimpleNamespace(
            event_type="buy", user_id="u1", item_id="c", items=(), context={}, timestamp_ms=0
        ),
    ]
    item_attributes = {"a": ("brand=acme", "size#3"), "c": ("brand=zeta",)}
    for event in events:
        for user_attributes in ((), ("country=DE", "vip=true")):
            args = (categories, 0.3, 1.0, user_attributes, item_attributes)
            named = observations(event, *args)
            indexed = indexer.observations(event, *args)
            assert indexed == [(model.indexes(names), y, w) for names, y, w in named]
    # The crossed features are there when the user has attributes, and only then.
    crossed = observations(events[1], categories, 0.3, 1.0, ("country=DE",), item_attributes)
    assert "uattr_iattr=country=DE|brand=zeta" in crossed[0][0]
    plain = observations(events[1], categories, 0.3, 1.0, (), item_attributes)
    assert not any(name.startswith("uattr_iattr=") for name in plain[0][0])


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
    indexer = model.indexer()
    parts = indexer.event("u", {}, user_attributes)
    assert indexer.indexes(parts, "item", ["c"], None, item_attributes) == model.indexes(names)
