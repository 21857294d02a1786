"""User segments (pipeline.features.segments.model): the fold, attribute values, decay and the
blend."""

from __future__ import annotations

import math
from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.core.decay import decayed, forward_weight, generation
from pipeline.core.events import Event
from pipeline.core.feedback import Feedback
from pipeline.core.keys import Keys
from pipeline.core.settings import DEFAULT_EVENT_WEIGHTS, load_settings
from pipeline.features.segments.config import segments_config
from pipeline.features.segments.model import (
    ATTRIBUTE_WEIGHT,
    CATEGORY,
    DIRECT_WEIGHT,
    Segment,
    SegmentDeltas,
    SegmentsConfig,
    attribute_segments,
    attribute_value_id,
    fold,
    item_segment,
    rank_item_segment,
    segment_key,
)

FAST = settings(max_examples=200, deadline=None, database=None)
REL = 1e-9
TS = 1_700_000_000_000
# The shipped half-life of affinities: 30 days.
H = 30 * 86_400.0
# The shipped configuration, built as the agent builds it.
CONFIG = segments_config(load_settings())
CATALOG = {
    "shirt": (["tops", "sale"], {"color": "red", "size": ["M", "L"], "cotton": 100}),
    "hat": (["tops"], {"color": "blue"}),
}


def event(
    kind: str, user: str = "u1", item: str | None = "shirt", ts: int = TS, **more: object
) -> Event:
    return Event(
        event_id=f"e-{kind}-{user}-{item}-{ts}",
        event_type=kind,
        user_id=user,
        timestamp_ms=ts,
        item_id=item,
        **more,  # type: ignore[arg-type]
    )


def read_back(deltas: SegmentDeltas, now: int = TS) -> dict[Segment, dict[str, float]]:
    """Decayed affinities at ``now`` as a reader sees them (generation current at ``now``)."""
    gen = generation(now, H)
    out: dict[Segment, dict[str, float]] = defaultdict(dict)
    for (segment, g), users in deltas.increments.items():
        if g == gen:
            for user, stored in users.items():
                out[segment][user] = decayed(stored, g, H, now)
    return dict(out)


SHIRT_SEGMENTS = {
    item_segment("shirt"),
    Segment(CATEGORY, "tops"),
    Segment(CATEGORY, "sale"),
    Segment("color", "red"),
    Segment("size", "M"),
    Segment("size", "L"),
    Segment("cotton", "100"),
}


# --- increments per event type -----------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "value", "weight"),
    [
        ("click", None, 1.0),
        ("basket", None, 2.0),
        ("consume", 0.5, 3.0),
        ("buy", 2.0, 4.0),
        ("rate", 4.0, 2.0),
        ("rate", 5.0, 2.0),
    ],
)
def test_positive_event_adds_its_weight_to_item_and_every_attribute_segment(
    kind: str, value: float | None, weight: float
) -> None:
    deltas = fold([event(kind, value=value)], CONFIG, CATALOG)
    gen = generation(TS, H)
    assert set(deltas.increments) == {(s, g) for s in SHIRT_SEGMENTS for g in (gen, gen + 1)}
    for (_segment, g), users in deltas.increments.items():
        assert users.keys() == {"u1"}
        assert math.isclose(users["u1"], forward_weight(weight, TS, g, H), rel_tol=REL)
    # Read at the event's own time, every segment holds exactly the event's weight.
    for users in read_back(deltas).values():
        assert math.isclose(users["u1"], weight, rel_tol=REL)
    assert deltas.blacklisted == {}


@pytest.mark.parametrize("rating", [1.0, 2.0, 3.0, 3.99])
def test_rating_below_positive_threshold_contributes_nothing(rating: float) -> None:
    deltas = fold([event("rate", value=rating)], CONFIG, CATALOG)
    assert deltas.increments == {} and deltas.blacklisted == {}


def test_positive_rating_threshold_comes_from_config() -> None:
    strict = segments_config(load_settings(positive_rating=5.0))
    assert fold([event("rate", value=4.0)], strict, CATALOG).increments == {}
    assert fold([event("rate", value=5.0)], strict, CATALOG).increments


def test_impression_login_and_zero_weight_change_nothing() -> None:
    events = [
        event("impression", item=None, items=("shirt", "hat")),
        event("login", item=None, previous_user_id="anon-1"),
    ]
    deltas = fold(events, CONFIG, CATALOG)
    assert deltas.increments == {} and deltas.blacklisted == {}
    no_clicks = segments_config(
        load_settings(event_weights={**DEFAULT_EVENT_WEIGHTS, "click": 0.0})
    )
    assert fold([event("click")], no_clicks, CATALOG).increments == {}


def test_items_missing_from_the_catalog_feed_only_their_own_segment() -> None:
    deltas = fold([event("buy", item="unknown")], CONFIG, CATALOG)
    assert {segment for segment, _ in deltas.increments} == {item_segment("unknown")}


def test_increments_sum_per_user_and_keep_users_apart() -> None:
    events = [event("click"), event("click", ts=TS + 1), event("buy", user="u2")]
    affinities = read_back(fold(events, CONFIG, CATALOG), now=TS + 1)
    for segment in SHIRT_SEGMENTS:
        assert math.isclose(affinities[segment]["u1"], 2.0, rel_tol=1e-6)
        assert math.isclose(affinities[segment]["u2"], 4.0, rel_tol=1e-6)


@FAST
@given(st.lists(st.sampled_from(["click", "buy", "basket", "blacklist"]), max_size=12), st.data())
def test_folds_add_up_like_the_fold_of_the_whole_batch(kinds: list[str], data: st.DataObject):
    """Increments commute: any split of a batch applies to the same totals."""
    events = [event(kind, user=f"u{i % 3}", ts=TS + i) for i, kind in enumerate(kinds)]
    cut = data.draw(st.integers(0, len(events)))
    whole = fold(events, CONFIG, CATALOG)
    totals: dict = defaultdict(lambda: defaultdict(float))
    for part in (events[:cut], events[cut:]):
        for key, users in fold(part, CONFIG, CATALOG).increments.items():
            for user, amount in users.items():
                totals[key][user] += amount
    # Blacklists withhold direct increments within their own batch only; compare the rest.
    shared = {k: v for k, v in whole.increments.items() if k[0].attribute is not None}
    assert shared.keys() == {k for k in totals if k[0].attribute is not None}
    for key, users in shared.items():
        for user, amount in users.items():
            assert math.isclose(totals[key][user], amount, rel_tol=REL)


# --- blacklist and login ------------------------------------------------------------------


def test_blacklist_marks_the_user_for_exclusion_from_the_item_segment() -> None:
    gen = generation(TS, H)
    deltas = fold([event("blacklist")], CONFIG, CATALOG)
    assert deltas.increments == {}
    assert deltas.blacklisted == {("shirt", gen): {"u1"}, ("shirt", gen + 1): {"u1"}}


@pytest.mark.parametrize("blacklist_first", [True, False])
def test_blacklist_in_a_batch_withholds_that_users_direct_increments(
    blacklist_first: bool,
) -> None:
    pair = [event("blacklist", ts=TS + 5), event("buy")]
    events = [*(pair if blacklist_first else pair[::-1]), event("click", user="u2")]
    affinities = read_back(fold(events, CONFIG, CATALOG), now=TS + 5)
    # u1 leaves the item's own segment, u2 stays; attribute affinities are untouched.
    assert affinities[item_segment("shirt")].keys() == {"u2"}
    assert math.isclose(affinities[Segment("color", "red")]["u1"], 4.0, rel_tol=1e-6)


# --- attribute values -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("red", "red"),
        ("dark-red_2", "dark-red_2"),
        (42, "42"),
        (-3, "-3"),
        (1.5, "1.5"),
        (2.0, "2"),
        (True, "true"),
        (False, "false"),
        ("has space", None),
        ("x" * 129, None),
        ("", None),
        ("{tag}", None),
        ('qu"ote', None),
        (None, None),
        ({"nested": 1}, None),
        ([1, 2], None),
        (float("nan"), None),
        (float("inf"), None),
    ],
)
def test_attribute_values_become_ids_or_are_skipped(value: object, expected: str | None) -> None:
    assert attribute_value_id(value) == expected


def test_attribute_segments_filter_flatten_deduplicate_and_cap() -> None:
    segments = attribute_segments(
        ["tops", "bad category", "tops", 7],
        {
            "color": ["red", "has space", "red", "blue", {"x": 1}],
            "bad name": "x",
            "weight": 1.5,
            CATEGORY: "tops",
            "note": "a" * 200,
        },
        limit=32,  # the shipped segments_max_attributes
    )
    assert segments == (
        Segment(CATEGORY, "tops"),
        Segment("color", "red"),
        Segment("color", "blue"),
        Segment("weight", "1.5"),
    )
    many = attribute_segments(["c0", "c1"], {"tag": [f"t{i}" for i in range(100)]}, limit=5)
    assert many == (
        Segment(CATEGORY, "c0"),
        Segment(CATEGORY, "c1"),
        *(Segment("tag", f"t{i}") for i in range(3)),
    )


# --- keys and config --------------------------------------------------------------------------


def test_segment_keys_extend_the_key_schema_with_the_generation() -> None:
    keys = Keys("rec")
    assert segment_key(keys, item_segment("i:1"), 7) == "rec:segment:item:i:1:7"
    assert segment_key(keys, Segment("color", "red"), 7) == "rec:segment:attr:color:red:7"
    with pytest.raises(ValueError):
        segment_key(keys, Segment("color", "has space"), 7)


def test_config_from_settings_uses_the_event_weights_and_defaults() -> None:
    config = segments_config(load_settings(positive_rating=3.0))
    assert config.feedback.weights == DEFAULT_EVENT_WEIGHTS
    assert config.feedback.positive_rating == 3.0
    assert config.half_life_s == 30 * 86_400
    assert config.max_users == 10_000
    with pytest.raises(ValueError):
        SegmentsConfig(
            feedback=Feedback(weights={}, positive_rating=4.0),
            half_life_s=0,
            max_users=10_000,
            max_attributes=32,
        )


# --- decay ------------------------------------------------------------------------------------

ages_s = st.floats(min_value=0, max_value=200 * 86_400.0)


@FAST
@given(ages_s, ages_s, st.sampled_from(["click", "buy", "consume"]))
def test_affinity_decays_monotonically_with_time(a: float, b: float, kind: str) -> None:
    """Read later, the same events weigh no more; never negative."""
    events = [event(kind), event("click", ts=TS + 3_600_000)]
    deltas = fold(events, CONFIG, CATALOG)
    start = TS + 3_600_000
    early, late = sorted((start + int(a * 1000), start + int(b * 1000)))

    def affinity(now: int) -> float:
        # The generation current at ``now`` holds every event up to ``now``.
        gen = generation(now, H)
        stored = deltas.increments[(item_segment("shirt"), gen)]["u1"]
        return decayed(stored, gen, H, now)

    if generation(late, H) > generation(start, H) + 1:
        return  # older than the two generations the events were written to
    assert affinity(early) >= affinity(late) * (1 - REL) > 0


@FAST
@given(st.integers(0, 400 * 86_400_000), st.integers(1, 400 * 86_400_000))
def test_recent_behaviour_outweighs_old_behaviour(offset: int, gap: int) -> None:
    """Two users with the same single event: the more recent one has the higher affinity."""
    old, new = TS + offset, TS + offset + gap
    deltas = fold([event("buy", user="old", ts=old), event("buy", user="new", ts=new)], CONFIG, {})
    gen = generation(new, H)
    users = deltas.increments.get((item_segment("shirt"), gen), {})
    if "old" in users:  # both events lie in this generation's window
        assert users["new"] > users["old"]
        assert decayed(users["new"], gen, H, new) == pytest.approx(4.0, rel=1e-9)


# --- the blend --------------------------------------------------------------------------------


def test_blend_puts_direct_affinity_first_and_finds_users_who_never_saw_the_item() -> None:
    direct = [("a", 8.0), ("b", 2.0)]
    colors = [("c", 50.0), ("a", 10.0)]
    categories = [("c", 5.0), ("d", 5.0), ("b", 1.0)]
    ranked = rank_item_segment(direct, [colors, categories], 10)
    # Each list is scaled to its top user: a weak direct affinity (b) can lose to a user
    # who leads every attribute list (c), but beats one who leads only some of them (d).
    assert [user for user, _ in ranked] == ["a", "c", "b", "d"]
    scores = dict(ranked)
    assert scores["a"] == pytest.approx(DIRECT_WEIGHT + ATTRIBUTE_WEIGHT * (0.2 + 0) / 2)
    assert scores["c"] == pytest.approx(ATTRIBUTE_WEIGHT * (1.0 + 1.0) / 2)
    assert scores["b"] == pytest.approx(DIRECT_WEIGHT * 0.25 + ATTRIBUTE_WEIGHT * 0.2 / 2)
    assert scores["d"] == pytest.approx(ATTRIBUTE_WEIGHT * 1.0 / 2)
    assert rank_item_segment(direct, [colors, categories], 2) == ranked[:2]


def test_blend_skips_excluded_users_markers_and_empty_lists() -> None:
    direct = [("a", 3.0), ("x", float("-inf")), ("z", 0.0)]
    ranked = rank_item_segment(direct, [[], [("b", 4.0), ("x", 9.0)]], 10, exclude={"x"})
    assert ranked == [("a", DIRECT_WEIGHT), ("b", ATTRIBUTE_WEIGHT)]
    assert rank_item_segment([], [], 10) == []
    assert rank_item_segment(direct, [], 0) == []


user_ids = st.sampled_from([f"u{i}" for i in range(12)])
rows = st.lists(st.tuples(user_ids, st.floats(min_value=0.01, max_value=1e6)), max_size=12)


@FAST
@given(rows, st.lists(rows, max_size=4), st.integers(1, 15), st.sets(user_ids, max_size=3))
def test_blend_is_sorted_bounded_unique_and_direct_counts_most(
    direct: list, by_attribute: list, n: int, exclude: set
) -> None:
    ranked = rank_item_segment(direct, by_attribute, n, exclude=exclude)
    users = [user for user, _ in ranked]
    scores = [score for _, score in ranked]
    assert len(ranked) <= n
    assert len(set(users)) == len(users)
    assert scores == sorted(scores, reverse=True)
    assert not set(users) & exclude
    assert all(0 < score <= DIRECT_WEIGHT + ATTRIBUTE_WEIGHT + 1e-9 for score in scores)
    # The user with the highest direct affinity beats everyone without direct affinity.
    totals: dict[str, float] = defaultdict(float)
    for user, affinity in direct:
        if user not in exclude:
            totals[user] += affinity
    if totals:
        best = max(totals.values())
        all_ranked = dict(rank_item_segment(direct, by_attribute, 100, exclude=exclude))
        for top in (user for user, affinity in totals.items() if affinity == best):
            for user, score in all_ranked.items():
                if user not in totals:
                    assert all_ranked[top] > score
