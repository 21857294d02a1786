"""The feedback rule: which events are positive, which are conversions, and what each weighs.

One home for the rule that trending, related items, the personal model, segments and the
evaluation all apply:

- ``buy``, ``consume`` and ``basket`` are conversions;
- a ``rate`` is a conversion from ``positive_rating`` up; below it, explicit negative feedback;
- a ``click`` is a weaker positive;
- ``impression``, ``blacklist`` and ``login`` are not positive (an impression without a
  click is a weak negative for the models that learn from impressions);
- the weight of a positive event is ``weights[event_type]`` (settings ``event_weights``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pipeline.core.events import Event

# Always conversions; a rating is one only from the positive threshold up.
CONVERSION_TYPES = frozenset({"buy", "consume", "basket"})
# Items a user bought, consumed, rated (a rating, good or bad, says the user had the item)
# or blacklisted are never recommended to that user again.
EXCLUDING_TYPES = frozenset({"buy", "consume", "rate", "blacklist"})
# The two strengths of positive feedback (popularity counters are kept per signal).
CLICK = "click"
CONVERSION = "conversion"
SIGNALS = (CLICK, CONVERSION)


@dataclass(frozen=True, slots=True)
class Feedback:
    """The rule with the operator's weights and rating threshold (from settings)."""

    weights: Mapping[str, float]
    positive_rating: float

    def is_low_rating(self, event: Event) -> bool:
        """A rating below the positive threshold: explicit negative feedback."""
        return event.event_type == "rate" and (
            event.value is None or event.value < self.positive_rating
        )

    def is_conversion(self, event: Event) -> bool:
        if event.event_type == "rate":
            return not self.is_low_rating(event)
        return event.event_type in CONVERSION_TYPES

    def is_positive(self, event: Event) -> bool:
        return event.event_type == CLICK or self.is_conversion(event)

    def signal(self, event: Event) -> str | None:
        """``"conversion"``, ``"click"``, or None for an event that is not positive."""
        if self.is_conversion(event):
            return CONVERSION
        return CLICK if event.event_type == CLICK else None

    def weight(self, event: Event) -> float:
        """What one event counts for in popularity and affinity: 0 unless it is positive."""
        if not self.is_positive(event):
            return 0.0
        return max(float(self.weights.get(event.event_type, 0.0)), 0.0)

    def judged(self, event: Event) -> tuple[str | None, float]:
        """(:meth:`signal`, :meth:`weight`) in one call: what learning asks of every event."""
        event_type = event.event_type
        if event_type == "rate":
            value = event.value
            if value is None or value < self.positive_rating:
                return None, 0.0
            signal = CONVERSION
        elif event_type in CONVERSION_TYPES:
            signal = CONVERSION
        elif event_type == CLICK:
            signal = CLICK
        else:
            return None, 0.0
        return signal, max(float(self.weights.get(event_type, 0.0)), 0.0)
