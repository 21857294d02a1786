"""Compiled pairing writes, event by event, exactly the pairs of the rule in Python
(``co_occurrences``), over histories whose entries come (late ones too), leave (by length
and by age), are blacklisted and merged."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from pipeline.core.settings import load_settings
from pipeline.features.personal.history import LOW_RATING, HistoryLimits, UserHistory
from pipeline.features.related import counts
from pipeline.features.related.config import related_config
from pipeline.features.related.counts import CountLists
from pipeline.features.related.model import RELATIONS, co_occurrences
from pipeline.features.related.pairing import Pairing
from tests.unit.features.personal.helpers import FEEDBACK, T0, event_at

# Windows of a few steps, so that partners fall in and out of them.
CONFIG = related_config(
    load_settings(related_click_window_s=60, related_buy_window_s=300, related_view_window_s=120)
)


def written(lists: CountLists, begin: int) -> Counter[tuple[str, str, str, float]]:
    """The pairs waiting from column ``begin`` on, in text ids."""
    codes, anchors, partners = lists.waiting[:, begin : lists.waiting_count].tolist()
    amounts = lists.waiting_amounts[begin : lists.waiting_count].tolist()
    return Counter(
        (RELATIONS[code], lists.ids[anchor], lists.ids[partner], amount)
        for code, anchor, partner, amount in zip(codes, anchors, partners, amounts, strict=True)
    )


@pytest.mark.parametrize("seed", range(12))
def test_compiled_pairs_are_the_rules_pairs(seed: int) -> None:
    rng = random.Random(seed)
    limits = HistoryLimits(length=rng.choice((6, 25, 80)), max_age_s=900, max_excluded=1000)
    lists = CountLists(RELATIONS, longest=400)
    pairing = Pairing(lists, CONFIG.click_window_s, CONFIG.buy_window_s, CONFIG.view_window_s)
    histories = {user: UserHistory(limits) for user in ("u", "v")}
    items = [f"i{k}" for k in range(rng.choice((4, 15, 60)))]
    now, nonempty = T0, 0
    for step in range(500):
        now += rng.randrange(0, 40_000)
        late = now - rng.randrange(0, 400_000) if rng.random() < 0.15 else now
        kind = rng.choice(["click", "click", "click", "buy", "basket", "consume", "rate"])
        extra = {"value": rng.choice([1.0, 5.0])} if kind == "rate" else {}
        user = rng.choice(("u", "u", "u", "v"))
        history = histories[user]
        event = event_at(kind, user, rng.choice(items), late, **extra)
        conversion = FEEDBACK.is_conversion(event)
        expected = Counter(co_occurrences(history, event, conversion, CONFIG))
        begin = lists.waiting_count
        number = lists.number_of(str(event.item_id))
        if kind == "click" or conversion:
            pairing.pair(history.paired_entries(lists.number_of), number, kind != "click", late)
        assert written(lists, begin) == expected, step
        nonempty += bool(expected)
        history.add(event, LOW_RATING if FEEDBACK.is_low_rating(event) else None, number)
        if rng.random() < 0.03:
            history.add(event_at("blacklist", user, rng.choice(items), now))
        if rng.random() < 0.02:
            histories["u"].merge_from(histories["v"])
            histories["v"] = UserHistory(limits)
        if rng.random() < 0.1:
            lists.flush()
    assert nonempty > 50


def test_pairs_that_do_not_fit_count_what_waits_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """With room for one waiting pair, an event with many partners has what waits counted
    first and its pairs written into a room made large enough."""
    monkeypatch.setattr(counts, "MAX_WAITING", 1)
    lists = CountLists(RELATIONS, longest=400)
    pairing = Pairing(lists, CONFIG.click_window_s, CONFIG.buy_window_s, CONFIG.view_window_s)
    history = UserHistory(HistoryLimits(length=50, max_age_s=900, max_excluded=10))
    for k in range(20):
        number = lists.number_of(f"i{k}")
        pairing.pair(history.paired_entries(lists.number_of), number, False, T0 + k)
        history.add(event_at("click", "u", f"i{k}", T0 + k), None, number)
    # Every earlier click pairs with every later one, both ways.
    assert lists.partners("also_clicked", "i0") == {f"i{k}": 1.0 for k in range(1, 20)}
    assert lists.partners("also_clicked", "i19") == {f"i{k}": 1.0 for k in range(19)}
    assert lists.waiting_count == 0


def test_a_stored_history_out_of_time_order_pairs_as_the_rule() -> None:
    """A history read from the store with its entries out of time order (written by another
    program) is put in order: compiled pairing, which relies on it, pairs as the rule."""
    limits = HistoryLimits(length=50, max_age_s=86_400, max_excluded=10)
    stored = {"recent": [["a", "click", T0 + 50_000], ["b", "click", T0], ["c", "buy", T0 + 70]]}
    history = UserHistory.from_state(stored, limits)
    assert [entry[2] for entry in history.recent] == [T0, T0 + 70, T0 + 50_000]
    lists = CountLists(RELATIONS, longest=400)
    pairing = Pairing(lists, CONFIG.click_window_s, CONFIG.buy_window_s, CONFIG.view_window_s)
    event = event_at("click", "u", "d", T0 + 100_000)
    number = lists.number_of("d")
    pairing.pair(history.paired_entries(lists.number_of), number, False, T0 + 100_000)
    expected = Counter(co_occurrences(history, event, False, CONFIG))
    assert written(lists, 0) == expected
    assert ("also_clicked", "d", "a", 1.0) in expected
