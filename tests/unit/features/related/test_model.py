"""Related items (pipeline.features.related.model): co-occurrence pairs, top-K, trimming and
the blend of relations."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.core.events import event_from_dict
from pipeline.core.settings import load_settings
from pipeline.features.personal.history import UserHistory
from pipeline.features.related.config import related_config
from pipeline.features.related.model import (
    RELATIONS,
    CoOccurrence,
    blend_related,
    co_occurrences,
    rank_related,
    trim,
)
from tests.unit.features.personal.helpers import (
    ITEMS,
    LIMITS,
    T0,
    event_at,
    is_conversion,
    make_event,
)

# --- top-K logic -----------------------------------------------------------------------------

PARTNERS = [f"p{i}" for i in range(15)]
counts_strategy = st.dictionaries(
    st.sampled_from(PARTNERS), st.integers(1, 50).map(float), max_size=len(PARTNERS)
)


@given(
    counts_strategy,
    st.dictionaries(st.sampled_from(PARTNERS), st.integers(0, 100).map(float)),
    st.floats(0.0, 2.0),
    st.integers(0, 20),
    st.sets(st.sampled_from(PARTNERS)),
)
def test_rank_related_is_sorted_short_and_excludes(counts, popularity, discount, n, exclude):
    ranked = rank_related(counts.items(), popularity, discount, n, exclude)
    assert len(ranked) <= n
    assert not {partner for partner, _ in ranked} & exclude
    assert len({partner for partner, _ in ranked}) == len(ranked)
    assert [score for _, score in ranked] == sorted((s for _, s in ranked), reverse=True)
    for partner, score in ranked:
        assert score == pytest.approx(
            counts[partner] / (popularity.get(partner, 0) + 1) ** discount
        )
    assert len(ranked) == min(n, len(set(counts) - exclude))
    # It is the top: nothing left out scores above the last one kept.
    kept = {partner for partner, _ in ranked}
    for partner, count in counts.items():
        if ranked and partner not in kept and partner not in exclude:
            assert count / (popularity.get(partner, 0) + 1) ** discount <= ranked[-1][1]


@given(counts_strategy, st.integers(1, 20))
def test_trim_keeps_the_highest_counts(partners, cap):
    kept = trim(partners, cap)
    assert len(kept) == min(cap, len(partners))
    assert all(partners[partner] == count for partner, count in kept.items())
    dropped = set(partners) - set(kept)
    if kept and dropped:
        assert min(kept.values()) >= max(partners[partner] for partner in dropped)
        # Ties go as Redis ZREMRANGEBYRANK breaks them: the smaller member is dropped first.
        floor = min(kept.values())
        assert all(
            partner < min(p for p in kept if kept[p] == floor)
            for partner in dropped
            if partners[partner] == floor
        )


WINDOWS = related_config(
    load_settings(
        related_click_window_s=10,
        related_buy_window_s=40,
        related_view_window_s=20,
        related_partners=4,
    )
)
# What the windows of pairing read from a history: clicks, and conversions (a ``rate`` entry
# is always one: ratings below the threshold are stored as ``rate_low``).
CLICK_ENTRIES = frozenset({"click"})
CONVERSION_ENTRIES = frozenset({"buy", "consume", "basket", "rate"})
history_steps = st.lists(
    st.tuples(
        st.sampled_from(ITEMS[:6]),
        st.sampled_from(["click", "click", "buy", "basket", "consume"]),
        st.integers(0, 8_000),
    ),
    max_size=25,
)


def build_history(steps) -> tuple[UserHistory, int]:
    history, t = UserHistory(LIMITS), 0
    for index, (item, kind, gap) in enumerate(steps):
        t += gap
        raw = {
            "event_id": f"c{index}",
            "type": kind,
            "user_id": "u",
            "item_id": item,
            "timestamp": T0 + t,
        }
        if kind == "consume":
            raw["value"] = 1.0
        history.add(event_from_dict(raw))
    return history, t


@given(
    history_steps,
    st.sampled_from(ITEMS[:6]),
    st.sampled_from(["click", "buy", "basket", "consume"]),
    st.integers(0, 8_000),
)
def test_co_occurrences_properties(steps, item, kind, gap):
    history, t = build_history(steps)
    event = make_event(kind, "u", item, t + gap)
    conversion = is_conversion(event)
    pairs = co_occurrences(history, event, conversion, WINDOWS)
    assert all(relation in RELATIONS and a != b for relation, a, b, _ in pairs)
    now = event.timestamp_ms
    if kind == "click":
        window = set(history.items_since(now - WINDOWS.click_window_s * 1000, CLICK_ENTRIES))
    else:
        window = set(history.items_since(now - WINDOWS.buy_window_s * 1000, CONVERSION_ENTRIES))
    if item in window:
        # A repeat within the window adds nothing.
        assert pairs == []
    for relation in ("also_clicked", "also_bought"):
        forward = Counter((a, b) for r, a, b, _ in pairs if r == relation)
        assert forward == Counter((b, a) for r, a, b, _ in pairs if r == relation)
    directed = [(a, b) for r, a, b, _ in pairs if r == "viewed_then_bought"]
    viewed = history.items_since(now - WINDOWS.view_window_s * 1000, CLICK_ENTRIES)
    for a, b in directed:
        assert b == item and a in viewed and a != item
    assert len(directed) <= WINDOWS.partners
    if kind == "click":
        assert {r for r, *_ in pairs} <= {"also_clicked"}
    else:
        assert "also_clicked" not in {r for r, *_ in pairs}


def test_repeated_click_within_the_window_creates_no_pair():
    history = UserHistory(LIMITS)
    history.add(make_event("click", "u", "a", 0))
    history.add(make_event("click", "u", "b", 5000))
    assert co_occurrences(history, make_event("click", "u", "a", 6000), False, WINDOWS) == []
    # Once the first click of "a" left the window, "a" pairs again with what is inside it.
    history.add(make_event("click", "u", "c", 12_500))
    pairs = co_occurrences(history, make_event("click", "u", "a", 13_000), False, WINDOWS)
    assert sorted(pairs) == [
        ("also_clicked", "a", "b", 1.0),
        ("also_clicked", "a", "c", 1.0),
        ("also_clicked", "b", "a", 1.0),
        ("also_clicked", "c", "a", 1.0),
    ]


def test_viewed_then_bought_is_directed():
    history = UserHistory(LIMITS)
    history.add(make_event("click", "u", "a", 0))
    buy = make_event("buy", "u", "b", 1000, value=1)
    assert co_occurrences(history, buy, True, WINDOWS) == [("viewed_then_bought", "a", "b", 1.0)]


ranked_lists = counts_strategy.map(lambda counts: rank_related(counts.items(), {}, 0.0, 50))


@given(st.sampled_from(RELATIONS), ranked_lists, st.integers(0, 20))
def test_blend_of_one_relation_preserves_its_order(relation, ranked, n):
    blended = blend_related({relation: ranked}, n)
    assert blended == [(partner, score, relation) for partner, score in ranked[:n]]


@given(st.lists(ranked_lists, min_size=2, max_size=3), st.integers(0, 20))
def test_blend_of_several_relations_is_sorted_short_and_unique(lists, n):
    blended = blend_related(dict(zip(RELATIONS, lists, strict=False)), n)
    partners = [partner for partner, _, _ in blended]
    assert len(partners) <= n and len(set(partners)) == len(partners)
    scores = [score for _, score, _ in blended]
    assert scores == sorted(scores, reverse=True)
    assert all(label == "blend" for _, _, label in blended)


# --- edge cases -------------------------------------------------------------------------------


def test_cooccurrence_trims_once_per_drain_like_the_redis_script():
    # Below the range of the setting (related_max_neighbours >= 10): the dataclass directly.
    cooc = CoOccurrence(dataclasses.replace(related_config(load_settings()), max_neighbours=2))
    cooc.apply(
        [("also_clicked", "x", p, c) for p, c in [("a", 5.0), ("b", 4.0), ("c", 1.0), ("d", 1.0)]]
    )
    cooc.trim_touched()
    assert len(cooc.counts["also_clicked"]["x"]) == 4  # not above 2 * cap yet
    cooc.apply([("also_clicked", "x", "e", 1.0), ("also_clicked", "x", "f", 3.0)])
    cooc.trim_touched()
    # Redis: add e and f, then ZCARD 6 > 4 -> keep the top 2 by (score, member).
    assert cooc.counts["also_clicked"]["x"] == trim(
        {"a": 5, "b": 4, "c": 1, "d": 1, "e": 1, "f": 3}, 2
    )
    assert set(cooc.counts["also_clicked"]["x"]) == {"a", "b"}


def test_repeat_clicks_within_the_window_make_no_new_pairs():
    config = related_config(load_settings())
    history = UserHistory(LIMITS)
    history.add(event_at("click", "u", "a", T0))
    history.add(event_at("click", "u", "b", T0 + 1000))
    assert co_occurrences(history, event_at("click", "u", "a", T0 + 2000), False, config) == []
