"""Prequential (test-then-learn) evaluation of the recommenders on an event log.

The log is replayed in timestamp order through
:class:`~pipeline.features.personal.engine.Engine`, the same code the personal agent runs.
Before each conversion (the feedback rule: buy, consume, basket, or a rating from the
positive threshold up) every recommender is asked for the user's top-k, excluding the items that user
interacted with before; a hit is the converted item being in that list. A conversion of an
item the user interacted with before can never be a hit, so it is not counted as a case:
the figures measure discovery, not "recently viewed" (which ``cases`` makes visible). Baselines
(all-time popularity, trending) are computed in the same run, on the same events.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pipeline.core.events import Event
from pipeline.features.personal.engine import Engine, PersonalConfig


@dataclass
class Scores:
    """Running HR@k, NDCG@k and MRR@k of one recommender."""

    k: int
    cases: int = 0
    hits: int = 0
    ndcg: float = 0.0
    mrr: float = 0.0
    recommended: set[str] = field(default_factory=set)
    curve: list[float] = field(default_factory=list)

    def add(self, ranked: list[str], target: str) -> None:
        self.cases += 1
        self.recommended.update(ranked)
        if target in ranked:
            position = ranked.index(target)
            self.hits += 1
            self.ndcg += 1.0 / math.log2(position + 2)
            self.mrr += 1.0 / (position + 1)

    def summary(self, catalog_size: int) -> dict[str, float]:
        n = max(self.cases, 1)
        return {
            f"hr@{self.k}": self.hits / n,
            f"ndcg@{self.k}": self.ndcg / n,
            f"mrr@{self.k}": self.mrr / n,
            "coverage": len(self.recommended) / max(catalog_size, 1),
            "cases": self.cases,
        }


class PopularityBaseline:
    """All-time counts of positive events: what "most popular" means without decay."""

    def __init__(self) -> None:
        self.counts: dict[str, float] = defaultdict(float)
        self._sorted: list[str] = []
        self._dirty = True

    def learn(self, item_id: str) -> None:
        self.counts[item_id] += 1.0
        self._dirty = True

    def recommend(self, n: int, exclude: set[str]) -> list[str]:
        if self._dirty:
            self._sorted = sorted(self.counts, key=lambda item: (-self.counts[item], item))
            self._dirty = False
        out = []
        for item_id in self._sorted:
            if item_id not in exclude:
                out.append(item_id)
                if len(out) == n:
                    break
        return out


def evaluate(
    events: Iterable[Event],
    k: int,
    config: PersonalConfig,
    progress: Callable[[int], None] | None = None,
    curve_every: int = 1000,
) -> dict[str, Any]:
    """Replay ``events`` (sorted here by timestamp, stable) and return the figures."""
    ordered = sorted(events, key=lambda event: event.timestamp_ms)
    engine = Engine(config)
    feedback = config.feedback
    popularity = PopularityBaseline()
    personal, popular, trending, related = Scores(k), Scores(k), Scores(k), Scores(k)
    last_item: dict[str, str] = {}
    catalog: set[str] = set()
    trending_cache: tuple[int, list[str]] = (-1, [])
    started = time.perf_counter()
    for count, event in enumerate(ordered, start=1):
        if event.item_id:
            catalog.add(event.item_id)
        catalog.update(event.items)
        if event.item_id and feedback.is_conversion(event):
            history = engine.histories.get(event.user_id)
            seen = history.seen_items() if history else set()
            if event.item_id not in seen:
                target = event.item_id
                personal.add([r.item_id for r in engine.recommend(event.user_id, k, seen)], target)
                popular.add(popularity.recommend(k, seen), target)
                # Trending changes slowly: rank it once per 100 events, filter per case.
                if count - trending_cache[0] >= 100:
                    trending_cache = (count, [item for item, _ in engine.trending.top(k + 200)])
                trending.add([i for i in trending_cache[1] if i not in seen][:k], target)
                previous = last_item.get(event.user_id)
                if previous is not None:
                    related.add(
                        [r.item_id for r in engine.related(previous, k, exclude=seen)], target
                    )
        engine.learn(event)
        engine.drain_changes()
        if event.item_id and event.event_type != "blacklist":
            last_item[event.user_id] = event.item_id
            if feedback.is_positive(event):
                popularity.learn(event.item_id)
        if event.event_type == "login" and event.previous_user_id in last_item:
            last_item[event.user_id] = last_item.pop(event.previous_user_id)
        if count % curve_every == 0:
            for scores in (personal, popular, trending):
                scores.curve.append(scores.hits / max(scores.cases, 1))
        if progress is not None and count % 1000 == 0:
            progress(1000)
    elapsed = time.perf_counter() - started
    if progress is not None:
        progress(len(ordered) % 1000)
    size = len(catalog)
    return {
        "events": len(ordered),
        "seconds": elapsed,
        "events_per_second": len(ordered) / elapsed if elapsed > 0 else 0.0,
        "k": k,
        "catalog_size": size,
        "personal": personal.summary(size),
        "popularity": popular.summary(size),
        "trending": trending.summary(size),
        "related": related.summary(size),
        "curve_every": curve_every,
        "curves": {
            "personal": personal.curve,
            "popularity": popular.curve,
            "trending": trending.curve,
        },
    }
