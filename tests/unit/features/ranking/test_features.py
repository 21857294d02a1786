"""The click model's features (pipeline.features.ranking.features): names, buckets, positions,
and what each event teaches the model."""

from __future__ import annotations

from pipeline.core.events import event_from_dict
from pipeline.features.ranking.features import (
    click_position,
    context_features,
    features,
    observations,
    position_bucket,
    with_time,
)
from tests.unit.features.ranking.helpers import NOW, click, impression


def test_features_cover_item_categories_user_crosses_context_and_position():
    names = features("u1", "book", ["novels", "paper"], {"device": "ios", "page": "home"}, 2)
    assert names == [
        "bias",
        "item=book",
        "user_item=u1|book",
        "cat=novels",
        "user_cat=u1|novels",
        "cat=paper",
        "user_cat=u1|paper",
        "ctx:device=ios",
        "ctx:page=home",
        "cat_device=novels|ios",
        "cat_device=paper|ios",
        "pos=2",
    ]
    # At ranking time there is no position: the learned position bias drops out.
    assert not any(n.startswith("pos=") for n in features("u1", "book", [], {}, None))


def test_context_numbers_are_bucketed_and_position_is_never_a_context_feature():
    assert context_features({"hour": 7, "price": 1000.0, "delta": -3.5, "position": 4}) == [
        "ctx:hour#7",
        "ctx:price#+2^10",
        "ctx:delta#-2^2",
    ]
    # Nearby large numbers share a bucket; small whole numbers keep their value.
    assert context_features({"n": 600}) == context_features({"n": 1000})
    assert context_features({"n": 3}) != context_features({"n": 4})
    assert [position_bucket(p) for p in (0, 9, 10, 15, 16, 40)] == [
        "0",
        "9",
        "2^4",
        "2^4",
        "2^5",
        "2^6",
    ]


def test_click_position_accepts_only_non_negative_whole_numbers():
    assert click_position({"position": 3}) == 3
    assert click_position({"position": 3.0}) == 3
    for bad in ({}, {"position": -1}, {"position": 1.5}, {"position": "3"}, {"position": True}):
        assert click_position(bad) is None


def test_observations_of_impressions_and_clicks():
    shown = impression("u1", ["a", "b", "c"], {"device": "web"})
    negatives = observations(shown, {"a": ["x"]}, 0.25, 1.0)
    assert [(clicked, weight) for _, clicked, weight in negatives] == [(False, 0.25)] * 3
    assert [names[-1] for names, _, _ in negatives] == ["pos=0", "pos=1", "pos=2"]
    assert "cat=x" in negatives[0][0] and "cat=x" not in negatives[1][0]

    (positive,) = observations(click("u1", "b", 1, {"device": "web"}), {}, 0.3, 1.0)
    context = with_time({"device": "web"}, NOW)
    assert positive == (features("u1", "b", [], context, 1), True, 1.0)
    (no_position,) = observations(click("u1", "b", None), {}, 0.3, 1.0)
    assert not any(n.startswith("pos=") for n in no_position[0])

    buy = event_from_dict(
        {"event_id": "e", "type": "buy", "user_id": "u1", "item_id": "b", "timestamp": NOW}
    )
    assert observations(buy, {}, 0.3, 1.0) == []
    assert observations(shown, {}, 0.0, 1.0) == []


def test_time_features_are_the_utc_hour_and_weekday():
    # 2026-12-03 (a Thursday) 14:05 UTC.
    thursday_afternoon = 1_796_306_700_000
    derived = with_time({"device": "ios"}, thursday_afternoon)
    assert derived == {"device": "ios", "time.hour": "14", "time.weekday": "3"}
    # Monday 1973-01-01 00:00 UTC is weekday 0, hour 0.
    assert with_time({}, 94_694_400_000) == {"time.hour": "0", "time.weekday": "0"}
    assert "ctx:time.hour=14" in context_features(derived)


def test_events_teach_their_hour_and_weekday():
    learned = observations(click("u1", "a", position=1), {}, 0.1, 1.0)
    names = learned[0][0]
    hour = (NOW // 3_600_000) % 24
    assert f"ctx:time.hour={hour}" in names
    assert any(name.startswith("ctx:time.weekday=") for name in names)


def test_user_attributes_become_sorted_bounded_strings_crossed_with_categories():
    from pipeline.features.ranking.features import MAX_USER_ATTRIBUTES, user_attribute_features

    found = user_attribute_features(
        {"country": "DE", "gold": True, "age": 37, "tags": ["a", "b", 3], "extra": {"x": 1}}
    )
    assert found == ("age#+2^6", "country=DE", "gold=true", "tags#3", "tags=a", "tags=b")
    many = user_attribute_features({"k": [f"v{n:02d}" for n in range(40)]})
    assert len(many) == MAX_USER_ATTRIBUTES and many == tuple(sorted(many))
    names = features("u", "i", ["hats", "shoes"], {}, None, ("country=DE",))
    assert "uattr_cat=country=DE|hats" in names and "uattr_cat=country=DE|shoes" in names
    assert not any(name.startswith("uattr") for name in features("u", "i", ["hats"], {}, None))
