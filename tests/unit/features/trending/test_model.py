"""The trending fold (pipeline.features.trending.model): a batch of events into forward-decayed
increments per sorted set, and the identities the reader relies on."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.core.decay import forward_weight, generation
from pipeline.core.events import EVENT_TYPES, Event
from pipeline.core.feedback import Feedback
from pipeline.core.settings import DEFAULT_EVENT_WEIGHTS, DEFAULT_TRENDING_KINDS, DEFAULT_WINDOWS
from pipeline.features.trending.model import Deltas, TrendingConfig, fold

FAST = settings(max_examples=150, deadline=None, database=None)
REL = 1e-9
TS = 1_700_000_000_000

# The shipped windows, kinds and weights, with the shipped positive_rating (4.0).
CONFIG = TrendingConfig(
    windows=dict(DEFAULT_WINDOWS),
    kinds=DEFAULT_TRENDING_KINDS,
    feedback=Feedback(weights=DEFAULT_EVENT_WEIGHTS, positive_rating=4.0),
)
CATEGORIES = {"a": ["shoes", "sale"], "b": ["shoes"]}  # "c" has none


# --- the fold ------------------------------------------------------------------------------

item_ids = st.sampled_from(["a", "b", "c"])


@st.composite
def events(draw: st.DrawFn) -> Event:
    event_type = draw(st.sampled_from(sorted(EVENT_TYPES)))
    item_id: str | None = draw(item_ids)
    value: float | None = None
    items: tuple[str, ...] = ()
    if event_type == "rate":
        value = draw(st.integers(1, 5).map(float) | st.floats(1, 5))
    elif event_type == "consume":
        value = draw(st.none() | st.floats(0, 1))
    elif event_type == "impression":
        items = tuple(draw(st.lists(item_ids, min_size=1, max_size=3)))
        item_id = draw(st.none() | item_ids)
    elif event_type == "login":
        item_id = draw(st.none() | item_ids)
    return Event(
        event_id=f"e{draw(st.integers(0, 10**6))}",
        event_type=event_type,
        user_id=draw(st.sampled_from(["u1", "u2"])),
        # Ten days: crosses generation boundaries of the 1h window (32 h each).
        timestamp_ms=TS + draw(st.integers(0, 10 * 86_400_000)),
        item_id=item_id,
        items=items,
        value=value,
        previous_user_id="anon" if event_type == "login" else None,
    )


def merged(*parts: Deltas) -> dict[Any, dict[str, float]]:
    total: dict[Any, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for part in parts:
        for key, increments in part.items():
            for item_id, amount in increments.items():
                total[key][item_id] += amount
    return total


def assert_same_deltas(
    left: dict[Any, dict[str, float]], right: dict[Any, dict[str, float]]
) -> None:
    assert set(left) == set(right)
    for key in left:
        assert set(left[key]) == set(right[key]), key
        for item_id, amount in left[key].items():
            assert math.isclose(amount, right[key][item_id], rel_tol=REL), (key, item_id)


@FAST
@given(st.lists(events(), max_size=12), st.lists(events(), max_size=12))
def test_fold_of_a_concatenation_is_the_sum_of_folds(
    first: list[Event], second: list[Event]
) -> None:
    assert_same_deltas(
        fold(first + second, CONFIG, CATEGORIES),
        merged(fold(first, CONFIG, CATEGORIES), fold(second, CONFIG, CATEGORIES)),
    )


@FAST
@given(st.lists(events(), max_size=12), st.randoms(use_true_random=False))
def test_fold_does_not_depend_on_order(batch: list[Event], random: Any) -> None:
    shuffled = list(batch)
    random.shuffle(shuffled)
    assert_same_deltas(fold(batch, CONFIG, CATEGORIES), fold(shuffled, CONFIG, CATEGORIES))


@FAST
@given(st.lists(events(), max_size=12))
def test_fold_keys_and_amounts_are_well_formed(batch: list[Event]) -> None:
    deltas = fold(batch, CONFIG, CATEGORIES)
    for (kind, window, gen, category), increments in deltas.items():
        assert kind in CONFIG.kinds
        assert window in CONFIG.windows
        assert category is None or category in {"shoes", "sale"}
        assert isinstance(gen, int)
        for item_id, amount in increments.items():
            assert item_id in {"a", "b", "c"}
            assert math.isfinite(amount) and amount > 0
            if category is not None:
                assert category in CATEGORIES[item_id]
                # A category set never holds more than the item's "all" set.
                assert amount == pytest.approx(deltas[(kind, window, gen, None)][item_id], rel=REL)


@FAST
@given(st.lists(events(), max_size=12))
def test_only_positive_events_with_an_item_count(batch: list[Event]) -> None:
    counted = [
        event
        for event in batch
        if event.item_id is not None
        and DEFAULT_EVENT_WEIGHTS.get(event.event_type, 0.0) > 0
        and (event.event_type != "rate" or (event.value or 0) >= 4)
    ]
    assert_same_deltas(fold(batch, CONFIG, CATEGORIES), fold(counted, CONFIG, CATEGORIES))
    if not counted:
        assert fold(batch, CONFIG, CATEGORIES) == {}


def click(item_id: str = "c", t: int = TS, **fields: Any) -> Event:
    return Event("e1", fields.pop("event_type", "click"), "u1", t, item_id=item_id, **fields)


@pytest.mark.parametrize("value", [1.0, 2.0, 3.0, 3.99])
def test_ratings_below_positive_count_nothing(value: float) -> None:
    assert fold([click(event_type="rate", value=value)], CONFIG, CATEGORIES) == {}


@pytest.mark.parametrize("value", [4.0, 4.5, 5.0])
def test_ratings_from_positive_up_count_as_conversions(value: float) -> None:
    deltas = fold([click(event_type="rate", value=value)], CONFIG, CATEGORIES)
    assert {key[0] for key in deltas} == {"conversions"}


def test_positive_rating_comes_from_the_config() -> None:
    lenient = TrendingConfig(
        windows=CONFIG.windows,
        kinds=CONFIG.kinds,
        feedback=Feedback(weights=CONFIG.feedback.weights, positive_rating=3.0),
    )
    assert fold([click(event_type="rate", value=3.0)], lenient, {}) != {}
    assert fold([click(event_type="rate", value=2.9)], lenient, {}) == {}


def test_impressions_and_other_zero_weight_events_count_nothing() -> None:
    shown = [
        Event("e1", "impression", "u1", TS, items=("a", "b")),
        Event("e2", "impression", "u1", TS, item_id="a", items=("a",)),
        Event("e3", "blacklist", "u1", TS, item_id="a"),
        Event("e4", "login", "u1", TS, item_id="a", previous_user_id="anon"),
        Event("e5", "login", "u1", TS, previous_user_id="anon"),
    ]
    assert fold(shown, CONFIG, CATEGORIES) == {}
    # Even when an operator routes impressions into a kind, a zero weight keeps them out.
    routed = TrendingConfig(
        windows=CONFIG.windows, kinds={"shown": ["impression"]}, feedback=CONFIG.feedback
    )
    assert fold(shown, routed, CATEGORIES) == {}


def test_types_in_no_kind_count_nothing() -> None:
    clicks_only = TrendingConfig(
        windows=CONFIG.windows, kinds={"clicks": ["click"]}, feedback=CONFIG.feedback
    )
    assert fold([click(event_type="buy")], clicks_only, {}) == {}


@pytest.mark.parametrize(
    ("event_type", "kind", "value"),
    [
        ("click", "clicks", None),
        ("buy", "conversions", None),
        ("consume", "conversions", 0.5),
        ("basket", "conversions", None),
        ("rate", "conversions", 5.0),
    ],
)
def test_each_event_lands_in_its_generation_and_the_next(
    event_type: str, kind: str, value: float | None
) -> None:
    event = click(item_id="c", event_type=event_type, value=value)
    deltas = fold([event], CONFIG, CATEGORIES)
    weight = DEFAULT_EVENT_WEIGHTS[event_type]
    expected = {}
    for window, half_life in DEFAULT_WINDOWS.items():
        gen = generation(TS, half_life)
        for target in (gen, gen + 1):
            expected[(kind, window, target, None)] = {
                "c": forward_weight(weight, TS, target, half_life)
            }
    assert dict(deltas) == expected


def test_categories_produce_category_keys() -> None:
    deltas = fold([click(item_id="a")], CONFIG, CATEGORIES)
    for window, half_life in DEFAULT_WINDOWS.items():
        gen = generation(TS, half_life)
        for target in (gen, gen + 1):
            amount = forward_weight(1.0, TS, target, half_life)
            for category in (None, "shoes", "sale"):
                assert deltas[("clicks", window, target, category)] == {"a": amount}
    assert len(deltas) == len(DEFAULT_WINDOWS) * 2 * 3
    # Unknown items (no catalog record) only reach the "all" sets.
    assert all(key[3] is None for key in fold([click(item_id="zzz")], CONFIG, CATEGORIES))


def test_same_item_adds_up_within_a_batch() -> None:
    deltas = fold([click("b"), click("b"), click("a")], CONFIG, CATEGORIES)
    half_life = DEFAULT_WINDOWS["1h"]
    gen = generation(TS, half_life)
    single = forward_weight(1.0, TS, gen, half_life)
    assert deltas[("clicks", "1h", gen, None)] == pytest.approx({"a": single, "b": 2 * single})
    assert deltas[("clicks", "1h", gen, "shoes")] == pytest.approx({"a": single, "b": 2 * single})
    assert deltas[("clicks", "1h", gen, "sale")] == pytest.approx({"a": single})


def test_duplicate_categories_count_once() -> None:
    deltas = fold([click(item_id="a")], CONFIG, {"a": ["shoes", "shoes"]})
    gen = generation(TS, DEFAULT_WINDOWS["1h"])
    assert deltas[("clicks", "1h", gen, "shoes")]["a"] == pytest.approx(
        deltas[("clicks", "1h", gen, None)]["a"]
    )
