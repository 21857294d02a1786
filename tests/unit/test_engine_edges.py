"""Edge cases of the personal engine found in review: late events, low ratings, trimming,
restores, and input that must be refused rather than crash."""

from __future__ import annotations

import pytest

from pipeline.engine import Engine, EngineConfig
from pipeline.events import InvalidEvent, check_context, event_from_dict
from pipeline.history import UserHistory
from pipeline.personal import ImplicitMF
from pipeline.related import CoOccurrence, RelatedConfig, co_occurrences, trim
from pipeline.settings import load_settings

T0 = 1_767_225_600_000


def event(kind: str, user: str, item: str | None, t: int, **extra) -> object:
    body = {"event_id": f"{kind}-{user}-{item}-{t}", "type": kind, "user_id": user, "timestamp": t}
    if item is not None:
        body["item_id"] = item
    return event_from_dict({**body, **extra})


def test_a_late_event_is_inserted_in_time_order():
    history = UserHistory()
    history.add(event("click", "u", "a", T0))
    history.add(event("click", "u", "c", T0 + 3 * 3_600_000))
    history.add(event("click", "u", "b", T0 + 60_000))  # arrives late, from another topic
    assert [entry[0] for entry in history.recent] == ["a", "b", "c"]
    # Time order holds although "b" arrived last: the window scan stops at the right place.
    assert history.items_since(T0 + 3 * 3_600_000 - 2 * 3_600_000) == ["c"]
    assert history.items_since(T0) == ["c", "b", "a"]


def test_a_low_rating_never_counts_as_a_conversion_for_also_bought():
    engine = Engine(EngineConfig(n_factors=4))
    engine.learn(event("rate", "u", "hated", T0, value=1))
    engine.learn(event("buy", "u", "liked", T0 + 1000, value=1))
    assert engine.cooc.counts["also_bought"].get("liked", {}) == {}
    assert engine.histories["u"].recent[0][1] == "rate_low"


def test_cooccurrence_trims_once_per_drain_like_the_redis_script():
    cooc = CoOccurrence(RelatedConfig(max_neighbours=2))
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
    config = RelatedConfig()
    history = UserHistory()
    history.add(event("click", "u", "a", T0))
    history.add(event("click", "u", "b", T0 + 1000))
    assert co_occurrences(history, event("click", "u", "a", T0 + 2000), False, config) == []


def test_restored_items_keep_their_original_order():
    model = ImplicitMF(n_factors=4, seed=3)
    for n in range(300):
        model.learn_one(f"user-{n % 7}", f"item-{(n * 37) % 200}", 1.0, key=f"e{n}")
    states = {item: model.item_state(item) for item in model.item_ids}
    restored = ImplicitMF(n_factors=4, seed=3)
    # Whatever order the store returns, restoring by "i" rebuilds the same index order.
    for item, state in sorted(states.items(), key=lambda pair: pair[1]["i"]):
        restored.set_item_state(item, state)
    assert restored.item_ids == model.item_ids
    assert restored.sample_negatives("item-1", 4, "k") == model.sample_negatives("item-1", 4, "k")


def test_vectors_of_another_size_are_refused_with_a_clear_message():
    small = ImplicitMF(n_factors=4)
    small.learn_one("u", "a", 1.0)
    big = ImplicitMF(n_factors=8)
    with pytest.raises(ValueError, match="PIPELINE_MF_FACTORS"):
        big.set_item_state("a", small.item_state("a"))
    with pytest.raises(ValueError, match="factors"):
        big.set_user_state("u", small.user_state("u"))


@pytest.mark.parametrize("value", [10**400, -(10**30), 2**64])
def test_huge_integers_are_refused_not_crashed_on(value: int):
    with pytest.raises(InvalidEvent, match="too large"):
        check_context({"n": value})
    with pytest.raises(InvalidEvent):
        event_from_dict(
            {
                "event_id": "e",
                "type": "buy",
                "user_id": "u",
                "item_id": "i",
                "timestamp": T0,
                "value": value,
            }
        )


@pytest.mark.parametrize(
    "overrides",
    [
        {"trending_windows": {"1 h": 3600}},
        {"trending_windows": {"a:b": 3600}},
        {"trending_kinds": {"clicks": ["klick"]}},
        {"trending_kinds": {"c:d": ["click"]}},
        {"event_weights": {"purchase": 1.0}},
    ],
)
def test_settings_refuse_names_that_would_break_keys_or_count_nothing(overrides: dict):
    with pytest.raises(ValueError):
        load_settings(**overrides)
