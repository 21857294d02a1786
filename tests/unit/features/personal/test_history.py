"""Per-user history (pipeline.features.personal.history): time order and windows."""

from __future__ import annotations

from pipeline.features.personal.history import UserHistory
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
