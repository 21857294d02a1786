"""The fast paths of the click model equal the readable ones: indexes without names, and
SGD over a batch of steps."""

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
)
def test_indexes_equal_the_hashes_of_the_feature_names(
    user: str,
    item: str,
    categories: list[str],
    context: dict,
    position: int | None,
    seed: int,
    n_bits: int,
) -> None:
    model = ClickModel(n_bits=n_bits, seed=seed)
    indexer = model.indexer()
    parts = indexer.event(user, context)
    expected = model.indexes(features(user, item, categories, context, position))
    assert indexer.indexes(parts, item, categories, position) == expected
    # Cached parts give the same answer the second time.
    assert indexer.indexes(indexer.event(user, context), item, categories, position) == expected


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
    for event in events:
        named = observations(event, categories, 0.3, 1.0)
        indexed = indexer.observations(event, categories, 0.3, 1.0)
        assert indexed == [(model.indexes(names), y, w) for names, y, w in named]


def test_a_batch_step_moves_each_weight_by_its_mean_gradient() -> None:
    model = ClickModel(n_bits=8, learning_rate=0.5, l2=0.0)
    model.set_weights({1: 0.0, 2: 1.0})
    # Index 1 is in both observations, index 2 in the second only; index 3 is new.
    model.learn_batch([([1], True, 1.0), ([1, 2, 3], False, 2.0)])
    p_first, p_second = 0.5, 1.0 / (1.0 + math.exp(-1.0))
    g_first, g_second = 1.0 * (1.0 - p_first), 2.0 * (0.0 - p_second)
    weights = model.weights
    assert math.isclose(weights[1], 0.5 * (g_first + g_second) / 2)
    assert math.isclose(weights[2], 1.0 + 0.5 * g_second)
    assert math.isclose(weights[3], 0.5 * g_second)
    assert model.drain_deltas() == {1: weights[1], 2: weights[2] - 1.0, 3: weights[3]}


def test_a_batch_step_never_overshoots_on_a_feature_every_observation_has() -> None:
    model = ClickModel(n_bits=8, learning_rate=0.05)
    model.learn_batch([([7], False, 1.0)] * 10_000)
    assert -0.05 < model.weights[7] < 0.0
