"""Related items (pipeline.features.related.model): co-occurrence pairs, top-K, trimming and
the blend of relations."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.core.events import event_from_dict
from pipeline.core.keys import Keys
from pipeline.core.settings import load_settings
from pipeline.features.personal.history import UserHistory
from pipeline.features.related.config import related_config
from pipeline.features.related.model import (
    RELATIONS,
    CoOccurrence,
    Pair,
    PairCounts,
    blend_related,
    co_occurrences,
    rank_related,
    trim,
)
from pipeline.features.related.state import queue_pairs
from pipeline.store.base import Writes
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
    )
)


def pairs_of(steps) -> set[tuple[str, str, str]]:
    """The definition: for one user, each relation's item pairs whose events qualify."""
    clicks = [(item, t) for item, kind, t in steps if kind == "click"]
    conversions = [(item, t) for item, kind, t in steps if kind != "click"]
    found = set()
    for relation, events, window in (
        ("also_clicked", clicks, WINDOWS.click_window_s * 1000),
        ("also_bought", conversions, WINDOWS.buy_window_s * 1000),
    ):
        for a, t1 in events:
            for b, t2 in events:
                if a != b and abs(t1 - t2) <= window:
                    found.add((relation, a, b))
    for a, t1 in clicks:
        for b, t2 in conversions:
            if a != b and 0 <= t2 - t1 <= WINDOWS.view_window_s * 1000:
                found.add(("viewed_then_bought", a, b))
    return found


def replay(steps) -> Counter:
    """Pairs counted when the events arrive in the order of ``steps``."""
    history, counted = UserHistory(LIMITS), Counter()
    for index, (item, kind, t) in enumerate(steps):
        raw = {"event_id": f"c{index}", "type": kind, "user_id": "u", "item_id": item}
        event = event_from_dict({**raw, "timestamp": T0 + t, "value": 1.0})
        pairs = co_occurrences(history, event, is_conversion(event), WINDOWS)
        counted.update((relation, a, b) for relation, a, b, _ in pairs)
        history.add(event)
    return counted


timed_steps = st.lists(
    st.tuples(
        st.sampled_from(ITEMS[:6]),
        st.sampled_from(["click", "click", "buy", "basket", "consume"]),
        st.integers(0, 60_000),
    ),
    max_size=20,
)


@given(timed_steps, st.randoms(use_true_random=False))
def test_each_pair_counts_once_whatever_the_arrival_order(steps, rng):
    # The histories hold every event here (LIMITS), so the counts are exactly the definition.
    assert len(steps) <= LIMITS.length
    in_time = sorted(steps, key=lambda step: step[2])
    shuffled = list(steps)
    rng.shuffle(shuffled)
    expected = Counter(pairs_of(steps))
    assert replay(in_time) == expected
    assert replay(shuffled) == expected
    assert replay(in_time[::-1]) == expected


def test_a_repeated_click_pairs_only_with_what_it_did_not_pair_with():
    history = UserHistory(LIMITS)
    history.add(make_event("click", "u", "a", 0))
    history.add(make_event("click", "u", "b", 5000))
    assert co_occurrences(history, make_event("click", "u", "a", 6000), False, WINDOWS) == []
    # {a, b} already counts for this user; c is new.
    history.add(make_event("click", "u", "c", 12_500))
    pairs = co_occurrences(history, make_event("click", "u", "a", 13_000), False, WINDOWS)
    assert sorted(pairs) == [("also_clicked", "a", "c", 1.0), ("also_clicked", "c", "a", 1.0)]


def test_a_late_click_pairs_with_later_events_in_both_directions():
    history = UserHistory(LIMITS)
    history.add(make_event("click", "u", "b", 5000))
    history.add(make_event("buy", "u", "c", 15_000, value=1))
    # A click at 0 arrives last: b is 5 s after it (also clicked), the buy of c 15 s after
    # it (viewed then bought within 20 s).
    pairs = co_occurrences(history, make_event("click", "u", "a", 0), False, WINDOWS)
    assert sorted(pairs) == [
        ("also_clicked", "a", "b", 1.0),
        ("also_clicked", "b", "a", 1.0),
        ("viewed_then_bought", "a", "c", 1.0),
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


@pytest.mark.parametrize("pair", [("p00", 1.0), ("absent", -1.0), ("p05", -1.0)])
def test_a_list_loaded_longer_than_the_cap_allows_is_trimmed_by_any_pair(pair):
    """A stored list may be longer than twice the cap (the cap was lowered since): the store
    trims it at the first increment of any kind, so the counts must too, whether the pair
    adds to a held partner or corrects one (held or not)."""
    cap = 2
    cooc = CoOccurrence(dataclasses.replace(related_config(load_settings()), max_neighbours=cap))
    loaded = {f"p{i:02d}": float(i + 1) for i in range(9)}
    cooc.load("also_clicked", "x", dict(loaded))
    partner, amount = pair
    cooc.apply([("also_clicked", "x", partner, amount)])
    assert cooc.trim_touched() == [("also_clicked", "x")]
    expected = dict(loaded)
    if partner in expected:
        expected[partner] += amount
        if expected[partner] <= 0:
            del expected[partner]
    assert cooc.counts()["also_clicked"]["x"] == trim(expected, cap)


def counted(pairs: list[Pair]) -> tuple[CoOccurrence, PairCounts]:
    """Counts of the default configuration after ``pairs``, and what they summed."""
    cooc = CoOccurrence(related_config(load_settings()), summing=True)
    cooc.apply(pairs)
    return cooc, cooc.take_sums()


def test_apply_sums_what_it_counts_per_list():
    """The sums get every amount, per (relation, anchor, partner), also those the counts
    cannot take (a correction of a pair never held): the store adds the same increments.
    Each call takes the sums since the last."""
    cooc, summed = counted(
        [
            ("also_clicked", "x", "a", 1.0),
            ("also_clicked", "x", "a", 1.0),
            ("also_clicked", "a", "x", 1.0),
            ("also_bought", "x", "a", 1.0),
            ("also_clicked", "x", "b", -1.0),
        ]
    )
    assert summed == {
        "also_clicked": {"x": {"a": 2.0, "b": -1.0}, "a": {"x": 1.0}},
        "also_bought": {"x": {"a": 1.0}},
    }
    cooc.apply([("also_clicked", "x", "a", -1.0)])
    assert cooc.take_sums() == {"also_clicked": {"x": {"a": -1.0}}}
    assert cooc.take_sums() == {}
    assert cooc.counts()["also_clicked"]["x"] == {"a": 1.0}
    assert cooc.counts()["also_bought"]["x"] == {"a": 1.0}


def test_sums_are_left_out_when_nothing_writes_them():
    cooc = CoOccurrence(related_config(load_settings()))
    cooc.apply([("also_clicked", "x", "a", 1.0)])
    assert cooc.take_sums() == {}
    assert cooc.counts()["also_clicked"]["x"] == {"a": 1.0}


def test_queue_pairs_writes_each_lists_sum_once_and_names_every_anchor():
    """One capped increment per list of what its pairs summed to; a list whose pairs cancel
    out within the batch writes nothing, but its anchor is still listed (it may hold a
    list from before)."""
    _, summed = counted(
        [
            ("also_clicked", "x", "a", 1.0),
            ("also_clicked", "a", "x", 1.0),
            ("also_clicked", "x", "a", 1.0),
            ("also_bought", "y", "b", 1.0),
            ("also_bought", "y", "b", -1.0),
            ("viewed_then_bought", "z", "b", 1.0),
            ("viewed_then_bought", "z", "b", -1.0),
            ("viewed_then_bought", "z", "c", 1.0),
        ]
    )
    writes = Writes()
    queue_pairs(writes, Keys("t"), summed, 50)
    assert sorted(writes.ops, key=repr) == sorted(
        [
            ("zincr_trim", "t:related:also_clicked:x", {"a": 2.0}, 50, 100, 0),
            ("zincr_trim", "t:related:also_clicked:a", {"x": 1.0}, 50, 100, 0),
            # Of a list, only the partners whose pairs did not cancel out.
            ("zincr_trim", "t:related:viewed_then_bought:z", {"c": 1.0}, 50, 100, 0),
            ("sadd", "t:related:anchors", ["a", "x", "y", "z"]),
        ],
        key=repr,
    )


def test_cooccurrence_trims_once_per_drain_like_the_redis_script():
    # Below the range of the setting (related_max_neighbours >= 10): the dataclass directly.
    cooc = CoOccurrence(dataclasses.replace(related_config(load_settings()), max_neighbours=2))
    cooc.apply(
        [("also_clicked", "x", p, c) for p, c in [("a", 5.0), ("b", 4.0), ("c", 1.0), ("d", 1.0)]]
    )
    cooc.trim_touched()
    assert len(cooc.counts()["also_clicked"]["x"]) == 4  # not above 2 * cap yet
    cooc.apply([("also_clicked", "x", "e", 1.0), ("also_clicked", "x", "f", 3.0)])
    cooc.trim_touched()
    # Redis: add e and f, then ZCARD 6 > 4 -> keep the top 2 by (score, member).
    assert cooc.counts()["also_clicked"]["x"] == trim(
        {"a": 5, "b": 4, "c": 1, "d": 1, "e": 1, "f": 3}, 2
    )
    assert set(cooc.counts()["also_clicked"]["x"]) == {"a", "b"}


def test_repeat_clicks_within_the_window_make_no_new_pairs():
    config = related_config(load_settings())
    history = UserHistory(LIMITS)
    history.add(event_at("click", "u", "a", T0))
    history.add(event_at("click", "u", "b", T0 + 1000))
    assert co_occurrences(history, event_at("click", "u", "a", T0 + 2000), False, config) == []
