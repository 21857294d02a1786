"""Forward decay and the trending fold (trending.py): the identities the reader relies on."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pipeline.events import EVENT_TYPES, MAX_TIMESTAMP_MS, MIN_TIMESTAMP_MS, Event
from pipeline.settings import DEFAULT_EVENT_WEIGHTS, DEFAULT_TRENDING_KINDS, DEFAULT_WINDOWS
from pipeline.trending import (
    GENERATION_HALF_LIVES,
    Deltas,
    TrendingConfig,
    decayed,
    expire_at_s,
    fold,
    forward_weight,
    generation,
    landmark_ms,
)

FAST = settings(max_examples=150, deadline=None, database=None)
REL = 1e-9
TS = 1_700_000_000_000

half_lives = st.sampled_from(sorted(DEFAULT_WINDOWS.values()) + [1.0, 60.0, 0.5]) | st.floats(
    min_value=1.0, max_value=1e7
)
timestamps = st.integers(min_value=MIN_TIMESTAMP_MS, max_value=MAX_TIMESTAMP_MS - 1)
# Zero or normal magnitudes: subnormal weights lose the relative precision under test.
weights = st.just(0.0) | st.floats(min_value=1e-6, max_value=1e6)

CONFIG = TrendingConfig(
    windows=dict(DEFAULT_WINDOWS), kinds=DEFAULT_TRENDING_KINDS, weights=DEFAULT_EVENT_WEIGHTS
)
CATEGORIES = {"a": ["shoes", "sale"], "b": ["shoes"]}  # "c" has none


# --- forward decay -------------------------------------------------------------------------


@FAST
@given(weights, timestamps, half_lives, st.floats(min_value=-4.0, max_value=64.0), st.booleans())
def test_decayed_forward_weight_is_the_plain_decayed_weight(
    weight: float, t: int, half_life: float, ago: float, next_gen: bool
) -> None:
    """Whichever of its two generations an event sits in, it reads back as w * 2**-(age/h)."""
    gen = generation(t, half_life) + int(next_gen)
    now = t + ago * half_life * 1000.0
    stored = forward_weight(weight, t, gen, half_life)
    expected = weight * 2.0 ** ((t - now) / (half_life * 1000.0))
    assert math.isclose(decayed(stored, gen, half_life, now), expected, rel_tol=REL)


@FAST
@given(timestamps, half_lives)
def test_generation_landmark_brackets_the_timestamp(t: int, half_life: float) -> None:
    gen = generation(t, half_life)
    # Up to the rounding of the landmark product (a few units in the last place).
    slack = 4 * math.ulp(float(t))
    assert landmark_ms(gen, half_life) <= t + slack
    assert t < landmark_ms(gen + 1, half_life) + slack
    assert gen >= 0


@FAST
@given(
    weights,
    half_lives,
    timestamps,
    st.lists(st.floats(min_value=-1.0, max_value=2.0), min_size=2, max_size=6),
)
def test_decayed_score_is_monotone_in_now_and_never_negative(
    stored: float, half_life: float, anchor: int, positions: list[float]
) -> None:
    """Read anywhere from a generation before to a generation after its own period."""
    gen = generation(anchor, half_life)
    period = GENERATION_HALF_LIVES * half_life * 1000.0
    nows = sorted(landmark_ms(gen, half_life) + position * period for position in positions)
    scores = [decayed(stored, gen, half_life, now) for now in nows]
    assert all(score >= 0.0 for score in scores)
    assert all(later <= earlier for earlier, later in zip(scores, scores[1:], strict=False))


@FAST
@given(half_lives, timestamps, st.floats(min_value=0.0, max_value=1.0, exclude_max=True))
def test_stored_values_stay_within_the_generation_bound(
    half_life: float, anchor: int, fraction: float
) -> None:
    """Events in [landmark(g-1), landmark(g+1)) add between 2**-32 and 2**32 times their weight."""
    gen = generation(anchor, half_life) + 1
    low = math.ceil(landmark_ms(gen - 1, half_life))
    high = math.ceil(landmark_ms(gen + 1, half_life))  # exclusive
    t = min(high - 1, low + math.floor(fraction * (high - low)))
    stored = forward_weight(1.0, t, gen, half_life)
    # Exact when landmarks are whole milliseconds; otherwise a landmark's rounding (a few
    # ulps of t) shifts the exponent by ulps / half-life.
    rel = 4 * math.ulp(float(t)) / (half_life * 1000.0) + REL
    bound = 2.0**GENERATION_HALF_LIVES
    assert (1.0 - rel) / bound <= stored <= bound * (1.0 + rel)


@FAST
@given(st.sampled_from(sorted(DEFAULT_WINDOWS.values())), timestamps)
def test_stored_values_are_exact_at_the_bounds_for_whole_second_half_lives(
    half_life: float, anchor: int
) -> None:
    gen = generation(anchor, half_life)
    assert forward_weight(1.0, landmark_ms(gen - 1, half_life), gen, half_life) == 2.0**-32
    assert forward_weight(1.0, landmark_ms(gen, half_life), gen, half_life) == 1.0
    end = landmark_ms(gen + 1, half_life)
    assert forward_weight(1.0, end - 1, gen, half_life) < 2.0**32


def test_stored_value_bounds_at_the_edges() -> None:
    half_life = 3600.0
    gen = generation(TS, half_life)
    assert forward_weight(1.0, landmark_ms(gen - 1, half_life), gen, half_life) == 2.0**-32
    assert forward_weight(1.0, landmark_ms(gen, half_life), gen, half_life) == 1.0
    assert forward_weight(3.0, landmark_ms(gen, half_life), gen, half_life) == 3.0
    half_life_ms = half_life * 1000.0
    one_later = landmark_ms(gen, half_life) + half_life_ms
    assert forward_weight(1.0, one_later, gen, half_life) == 2.0
    # Read at the event's time it counts its weight, one half-life later half of it.
    assert decayed(2.0, gen, half_life, one_later) == 1.0
    assert decayed(2.0, gen, half_life, one_later + half_life_ms) == 0.5


@FAST
@given(st.integers(min_value=0, max_value=10**6), half_lives)
def test_generation_expires_after_its_read_period(gen: int, half_life: float) -> None:
    """Readers use generation(now); the key outlives every `now` of that generation."""
    end_ms = landmark_ms(gen + 1, half_life)
    expire = expire_at_s(gen, half_life)
    assert isinstance(expire, int)
    assert expire * 1000.0 > end_ms
    # With a margin of at least one half-life.
    assert expire >= end_ms / 1000.0 + half_life
    # ... but not forever: gone before the generation after next is read.
    assert expire * 1000.0 <= landmark_ms(gen + 2, half_life) + 2000.0


@FAST
@given(timestamps, half_lives, st.floats(min_value=0.0, max_value=1.0, exclude_max=True))
def test_readers_find_every_event_in_the_generation_they_read(
    t: int, half_life: float, fraction: float
) -> None:
    """From t until its second generation ends, the generation read at `now` holds the event."""
    gen = generation(t, half_life)
    end = landmark_ms(gen + 2, half_life)
    now = t + fraction * (end - t)
    assume(now < end)
    assert generation(now, half_life) in (gen, gen + 1)
    assert expire_at_s(generation(now, half_life), half_life) * 1000.0 > now


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
        and DEFAULT_EVENT_WEIGHTS[event.event_type] > 0
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
        windows=CONFIG.windows, kinds=CONFIG.kinds, weights=CONFIG.weights, positive_rating=3.0
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
        windows=CONFIG.windows, kinds={"shown": ["impression"]}, weights=CONFIG.weights
    )
    assert fold(shown, routed, CATEGORIES) == {}


def test_types_in_no_kind_count_nothing() -> None:
    clicks_only = TrendingConfig(
        windows=CONFIG.windows, kinds={"clicks": ["click"]}, weights=CONFIG.weights
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
