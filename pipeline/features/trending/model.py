"""The trending fold: a batch of events into forward-decayed increments per sorted set.

Every positive event adds its weight (``pipeline.core.feedback``), forward-decayed per window
(``pipeline.core.decay``), to the set of each trending kind its type feeds, once for all
items and once per catalog category of the item, in its generation and the next.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pipeline.core.decay import spread
from pipeline.core.events import Event
from pipeline.core.feedback import Feedback


@dataclass(frozen=True, slots=True)
class TrendingConfig:
    """Windows (name -> half-life in seconds), kinds (name -> event types) and the rule."""

    windows: Mapping[str, float]
    kinds: Mapping[str, Iterable[str]]
    feedback: Feedback


# (kind, window, generation, category or None) -> item_id -> increment
Deltas = dict[tuple[str, str, int, str | None], dict[str, float]]


def fold(
    events: Iterable[Event], config: TrendingConfig, categories: Mapping[str, Iterable[str]]
) -> Deltas:
    """Fold a batch of events into per-key increments.

    ``categories`` maps item ids to their catalog categories (missing: none). Adding the
    result of two folds equals folding the concatenation (increments commute), which is
    what lets any worker apply item-level deltas.
    """
    deltas: Deltas = defaultdict(lambda: defaultdict(float))
    for event in events:
        if event.item_id is None:
            continue
        weight = config.feedback.weight(event)
        if weight <= 0:
            continue
        kinds = [kind for kind, types in config.kinds.items() if event.event_type in types]
        if not kinds:
            continue
        # Duplicates would count the event twice in one category.
        item_categories = dict.fromkeys(categories.get(event.item_id, ()))
        for window, half_life in config.windows.items():
            for target, amount in spread(weight, event.timestamp_ms, half_life):
                for kind in kinds:
                    deltas[(kind, window, target, None)][event.item_id] += amount
                    for category in item_categories:
                        deltas[(kind, window, target, category)][event.item_id] += amount
    return deltas
