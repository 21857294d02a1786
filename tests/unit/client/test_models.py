"""Answers become frozen dataclasses; fields a newer server adds are ignored."""

from __future__ import annotations

import dataclasses

import pytest

from pipeline.client import (
    ForYou,
    Funnel,
    Ranking,
    Recommendations,
    Recommended,
    Related,
    Scenario,
    ScenarioStats,
    Trending,
)
from tests.unit.client.helpers import Server, answer

RECOMMENDATIONS = {
    "recommendation_id": "product_page:5f0c",
    "scenario": "product_page",
    "user_id": None,
    "generated_at": 1_700_000_000_000,
    "items": [
        {
            "item_id": "stove",
            "score": 0.83,
            "source": {"stage": "related", "model": "related", "source_items": ["tent"]},
            "item": {"title": "Camp stove", "price": 39.9},
        },
        {"item_id": "lamp", "score": 1, "source": {"stage": "trending", "model": "trending"}},
    ],
    "added_by_a_newer_server": True,
}


def test_recommendations_parse_into_typed_items():
    server = Server(answer(200, RECOMMENDATIONS))
    with server.client() as client:
        result = client.recommend("product_page", item_ids=["tent"], fields=["title", "price"])
    assert result == Recommendations(
        recommendation_id="product_page:5f0c",
        scenario="product_page",
        user_id=None,
        generated_at=1_700_000_000_000,
        items=(
            Recommended(
                "stove",
                0.83,
                {"stage": "related", "model": "related", "source_items": ["tent"]},
                {"title": "Camp stove", "price": 39.9},
            ),
            Recommended("lamp", 1.0, {"stage": "trending", "model": "trending"}, None),
        ),
    )
    assert isinstance(result.items[1].score, float)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.scenario = "home"  # type: ignore[misc]


def test_lists_of_the_existing_endpoints_parse():
    item = {"item_id": "i1", "score": 2.5, "source": {"model": "trending"}}
    server = Server(
        answer(200, {"user_id": "u", "stage": "fallback", "generated_at": 7, "items": [item]}),
        answer(200, {"item_id": "i0", "relation": "blend", "items": [item]}),
        answer(
            200,
            {"kind": "clicks", "window": "1h", "category": None, "generated_at": 8, "items": []},
        ),
        answer(200, {"user_id": "u", "items": [item]}),
    )
    expected = Recommended("i1", 2.5, {"model": "trending"})
    with server.client() as client:
        assert client.for_you("u") == ForYou("u", "fallback", 7, (expected,))
        assert client.related("i0") == Related("i0", "blend", (expected,))
        assert client.trending() == Trending("clicks", "1h", None, 8, ())
        assert client.rank("u", ["i1"]) == Ranking("u", (expected,))


def test_scenarios_parse():
    body = {
        "scenarios": [
            {
                "name": "home",
                "description": "Personal, then trending.",
                "params": {"diversity": {"type": "float", "default": 0.0}},
                "stages": [{"name": "personal"}, {"name": "trending"}],
            },
            {"name": "email"},
        ]
    }
    server = Server(answer(200, body))
    with server.client() as client:
        found = client.scenarios()
    assert found == [
        Scenario(
            "home",
            "Personal, then trending.",
            {"diversity": {"type": "float", "default": 0.0}},
            ({"name": "personal"}, {"name": "trending"}),
        ),
        Scenario("email", "", {}, ()),
    ]


def test_stats_parse_totals_stages_and_item_rows():
    body = {
        "scenario": "home",
        "window": "1d",
        "window_hours": 24,
        "served": 100,
        "impressions": 80,
        "clicks": 8,
        "conversions": 2,
        "basis": "impressions",
        "click_through_rate": 0.1,
        "conversion_rate": 0.025,
        "stages": {
            "personal": {"impressions": 50, "clicks": 6, "click_through_rate": 0.12},
            "trending": {"served": 0, "click_through_rate": None, "basis": "served"},
        },
        "items": [{"item_id": "i1", "impressions": 10, "clicks": 3, "conversions": 0}],
    }
    server = Server(answer(200, body))
    with server.client() as client:
        stats = client.stats("home")
    assert stats == ScenarioStats(
        scenario="home",
        window="1d",
        totals=Funnel(100, 80, 8, 2, 0.1, 0.025, "impressions"),
        stages={
            "personal": Funnel(0, 50, 6, 0, 0.12, None),
            "trending": Funnel(0, 0, 0, 0, None, None, "served"),
        },
        items=({"item_id": "i1", "impressions": 10, "clicks": 3, "conversions": 0},),
        window_hours=24,
    )
