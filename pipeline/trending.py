"""Trending: forward-decayed popularity per kind, window and category.

Forward decay (Cormode et al., 2009) lets every event add a fixed amount to a score and
still have old events fade, with no periodic rescan of the keys. An event at time ``t``
adds ``weight * 2 ** ((t - L) / h)`` where ``h`` is the window's half-life and ``L`` a
landmark; read at time ``T``, ``score * 2 ** ((L - T) / h)`` is the decayed count "now".

The stored value grows without bound as ``t - L`` grows, so the landmark moves in steps:
generation ``g`` uses ``L_g = g * GENERATION_HALF_LIVES * h``. Each event is added to its own
generation and to the next one, so when readers switch to generation ``g + 1`` it already
holds at least ``GENERATION_HALF_LIVES`` half-lives of history; what it lacks has decayed
by ``2 ** -GENERATION_HALF_LIVES`` and does not matter. Stored values stay within
``2 ** +-GENERATION_HALF_LIVES`` (exact in a double). Old generations expire by TTL.

This module is pure: the agent (``trending_agent.py``) and the reader call it.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pipeline.events import Event

GENERATION_HALF_LIVES = 32


def generation(timestamp_ms: int, half_life_s: float) -> int:
    """Generation whose landmark lies at or before ``timestamp_ms``."""
    period_ms = GENERATION_HALF_LIVES * half_life_s * 1000.0
    return math.floor(timestamp_ms / period_ms)


def landmark_ms(gen: int, half_life_s: float) -> float:
    return gen * GENERATION_HALF_LIVES * half_life_s * 1000.0


def forward_weight(weight: float, timestamp_ms: int, gen: int, half_life_s: float) -> float:
    """Amount an event adds to generation ``gen``'s stored score."""
    exponent = (timestamp_ms - landmark_ms(gen, half_life_s)) / (half_life_s * 1000.0)
    return weight * 2.0**exponent


def decayed(stored: float, gen: int, half_life_s: float, now_ms: float) -> float:
    """Stored score of generation ``gen`` as a decayed weighted count at ``now_ms``."""
    exponent = (landmark_ms(gen, half_life_s) - now_ms) / (half_life_s * 1000.0)
    return stored * 2.0**exponent


def expire_at_s(gen: int, half_life_s: float) -> int:
    """Unix time after which generation ``gen`` is never read again (plus a margin)."""
    end_ms = landmark_ms(gen + 1, half_life_s)
    return int(end_ms / 1000.0 + half_life_s) + 1


@dataclass(frozen=True, slots=True)
class TrendingConfig:
    """What the fold needs from settings: kinds, windows and per-type weights."""

    windows: Mapping[str, float]
    kinds: Mapping[str, Iterable[str]]
    weights: Mapping[str, float]
    positive_rating: float = 4.0

    def kinds_of(self, event: Event) -> list[str]:
        if event.event_type == "rate" and (
            event.value is None or event.value < self.positive_rating
        ):
            return []
        return [kind for kind, types in self.kinds.items() if event.event_type in types]


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
        weight = config.weights.get(event.event_type, 0.0)
        if weight <= 0:
            continue
        kinds = config.kinds_of(event)
        if not kinds:
            continue
        # Duplicates would count the event twice in one category.
        item_categories = dict.fromkeys(categories.get(event.item_id, ()))
        for window, half_life in config.windows.items():
            gen = generation(event.timestamp_ms, half_life)
            for target in (gen, gen + 1):
                amount = forward_weight(weight, event.timestamp_ms, target, half_life)
                for kind in kinds:
                    deltas[(kind, window, target, None)][event.item_id] += amount
                    for category in item_categories:
                        deltas[(kind, window, target, category)][event.item_id] += amount
    return deltas
