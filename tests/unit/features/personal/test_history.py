"""Per-user history (pipeline.features.personal.history): time order and windows."""

from __future__ import annotations

import random

import pytest

from pipeline.features.personal.history import LOW_RATING, HistoryLimits, UserHistory, entry_times
from tests.unit.features.personal.helpers import LIMITS, T0, event_at


def test_a_late_event_is_inserted_in_time_order():
    history = UserHistory(LIMITS)
    history.add(event_at("click", "u", "a", T0))
    history.add(event_at("click", "u", "c", T0 + 3 * 3_600_000))
    history.add(event_at("click", "u", "b", T0 + 60_000))  # arrives late, from another topic
    assert [entry[0] for entry in history.recent] == ["a", "b", "c"]
    # Time order holds although "b" arrived last: the window scan stops at the right place.
    assert history.items_since(T0 + 3 * 3_600_000 - 2 * 3_600_000) == ["c"]
    assert history.items_since(T0) == ["c", "b", "a"]


@pytest.mark.parametrize("seed", range(4))
def test_a_limit_gives_the_first_distinct_items_of_the_whole_walk(seed: int) -> None:
    """``items_since`` with a limit stops once it has that many distinct items: the same
    items as the whole walk cut to the limit, for any types and window."""
    rng = random.Random(seed)
    history = UserHistory(HistoryLimits(length=300, max_age_s=10**9, max_excluded=1000))
    for step in range(300):
        kind = rng.choice(["click", "click", "buy", "basket", "consume"])
        history.add(event_at(kind, "u", f"i{rng.randrange(40)}", T0 + step * 1000))
    for since in (0, T0 + 150_000, T0 + 290_000):
        for limit in (0, 1, 3, 20, 1000):
            assert history.items_since(since, limit=limit) == history.items_since(since)[:limit]
            assert history.clicked_since(since, limit) == history.clicked_since(since)[:limit]


@pytest.mark.parametrize("seed", range(8))
def test_paired_entries_kept_in_step_equal_those_built_from_the_entries(seed: int) -> None:
    """The click and conversion entries a history keeps for pairing, in item numbers, as
    entries come (late ones too, some without their number), leave (trimmed by length and
    by age), are blacklisted and merged equal what building them from the entries gives,
    after every step."""
    rng = random.Random(seed)
    limits = HistoryLimits(length=12, max_age_s=600, max_excluded=1000)
    history, other = UserHistory(limits), UserHistory(limits)
    numbers: dict[str, int] = {}

    def number(item: str) -> int:
        return numbers.setdefault(item, len(numbers))

    now = T0
    for step in range(400):
        now += rng.randrange(0, 90_000)
        late = now - rng.randrange(0, 300_000) if rng.random() < 0.2 else now
        kind = rng.choice(["click", "click", "click", "buy", "basket", "rate", "consume"])
        extra = {"value": rng.choice([1.0, 5.0])} if kind == "rate" else {}
        event = event_at(kind, "u", f"i{rng.randrange(6)}", late, **extra)
        target = other if rng.random() < 0.15 else history
        low = kind == "rate" and extra["value"] < 4
        told = number(str(event.item_id)) if rng.random() < 0.9 else -1
        target.paired_entries(number)
        target.add(event, LOW_RATING if low else None, told)
        if rng.random() < 0.03:
            history.add(event_at("blacklist", "u", f"i{rng.randrange(6)}", now))
        if rng.random() < 0.03:
            history.merge_from(other)
            other = UserHistory(limits)
        for each in (history, other):
            built = UserHistory(limits, recent=each.recent).paired_entries(number)
            assert each.paired_entries(number) == built, step
            times = entry_times(each.recent)
            assert sorted(built[1::2]) == sorted(
                t for kind in times for ts in kind.values() for t in ts
            )
    assert len(history.paired_entries(number)) > 0


@pytest.mark.parametrize("seed", range(4))
def test_has_seen_answers_as_the_seen_items_do(seed: int) -> None:
    """``has_seen`` (what ``pipeline evaluate`` asks of every conversion) agrees with
    ``seen_items`` for every item after every step: clicks, conversions, low ratings (an
    entry that is neither), purchases that exclude, blacklists, entries trimmed by length
    and age, and items never met."""
    rng = random.Random(seed)
    limits = HistoryLimits(length=8, max_age_s=600, max_excluded=3)
    history = UserHistory(limits)
    items = [f"i{n}" for n in range(10)]
    now = T0
    answers = set()
    for step in range(300):
        now += rng.randrange(0, 120_000)
        kind = rng.choice(["click", "click", "buy", "rate", "rate", "consume", "blacklist"])
        extra = {"value": rng.choice([1.0, 5.0])} if kind == "rate" else {}
        low = kind == "rate" and extra["value"] < 4
        history.add(
            event_at(kind, "u", rng.choice(items[:8]), now, **extra), LOW_RATING if low else None
        )
        seen = history.seen_items()
        for item in items:
            assert history.has_seen(item) == (item in seen), (step, item)
            answers.add((item in seen, item in history.excluded))
    # Both answers came up, excluded items among the seen ones.
    assert {(True, False), (False, False), (True, True)} <= answers
