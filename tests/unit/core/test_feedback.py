"""The feedback rule (pipeline.core.feedback): which events are positive feedback."""

from __future__ import annotations

import pytest

from pipeline.core.events import event_from_dict
from pipeline.core.feedback import Feedback
from pipeline.core.settings import DEFAULT_EVENT_WEIGHTS
from tests.unit.core.helpers import DROP, make


def feedback(positive_rating: float = 4.0) -> Feedback:
    """The rule with the shipped weights; 4.0 is the shipped ``positive_rating``."""
    return Feedback(weights=DEFAULT_EVENT_WEIGHTS, positive_rating=positive_rating)


@pytest.mark.parametrize(
    ("event_type", "value", "positive"),
    [
        ("rate", 1, False),
        ("rate", 3, False),
        ("rate", 3.99, False),
        ("rate", 4, True),
        ("rate", 5, True),
        ("click", None, True),
        ("buy", None, True),
        ("consume", 0.1, True),
        ("basket", None, True),
        ("impression", None, False),
        ("blacklist", None, False),
        ("login", None, False),
    ],
)
def test_is_positive(event_type: str, value: float | None, positive: bool) -> None:
    event = event_from_dict(make(event_type, value=value if value is not None else DROP))
    assert feedback().is_positive(event) is positive
    # The threshold is a setting (positive_rating), not a constant.
    if event_type == "rate":
        assert feedback(positive_rating=3.0).is_positive(event) is (value >= 3.0)
    # What learning asks in one call is what the rule's parts answer.
    for rule in (feedback(), feedback(positive_rating=3.0)):
        assert rule.judged(event) == (rule.signal(event), rule.weight(event))
    assert (feedback().judged(event)[0] is None) is (not positive)
