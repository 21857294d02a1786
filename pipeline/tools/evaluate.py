"""Prequential (test-then-learn) evaluation of the recommenders on an event log.

The log is replayed in timestamp order through
:class:`~pipeline.features.personal.engine.Engine`, the same code the personal agent runs.
Before each conversion (the feedback rule: buy, consume, basket, or a rating from the
positive threshold up) every recommender is asked for the user's top-k, excluding the items
the user's history holds (what the live lists exclude); a hit is the converted item being in
that list. A conversion of an item the user interacted with before, however long ago
(:class:`MetItems`), is not counted as a case: the figures measure discovery, not "recently
viewed" (which ``cases`` makes visible), and the cases do not depend on the history's
length. Baselines (all-time popularity, trending) are computed in the same run, on the same
events.

Cold start is reported apart: the cases whose item is *new* (created, or first seen in the
log, less than ``new_item_age_ms`` before the conversion; an item never seen before is new)
and the cases of *new users* (fewer than ``new_user_events`` earlier events with an item).

With a catalog whose items have text and content on (``content_taste_weight`` or
``content_factor_rate`` above 0),
the items' content vectors reach the engine as the
content agent would give them to the personal agent: each item when it is created (at the
start when it has no ``created_at``). A second engine that never gets them learns the same
events in the same run, and its for-you list is reported as ``personal_without_content``:
what content adds, measured on the same cases. With a catalog and the freshness prior on
(``freshness_rate`` above 0, ``freshness.py``), that second engine runs without the prior too
(and without text).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from pipeline.core.events import FORGET, Event
from pipeline.core.items import Item
from pipeline.core.ranked import RankedScores
from pipeline.features.content.engine import ContentConfig, ContentEngine
from pipeline.features.personal.engine import Engine, PersonalConfig
from pipeline.features.personal.warm import load_kernels


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


# The for-you blend of an engine that gets no content vectors (reported with a catalog).
WITHOUT_CONTENT = "personal_without_content"


class ContentFeed:
    """Catalog items' content vectors, released to engines in creation order."""

    def __init__(self, items: Sequence[Item], config: ContentConfig) -> None:
        self.engine = ContentEngine(config)
        # Items without a creation time are there from the start.
        self.queue = sorted(items, key=lambda item: item.created_at_ms or 0, reverse=True)

    def due(self, timestamp_ms: int) -> dict[str, Any]:
        """The vectors of the items created up to ``timestamp_ms`` not yet released."""
        batch = []
        while self.queue and (self.queue[-1].created_at_ms or 0) <= timestamp_ms:
            batch.append(self.queue.pop())
        if not batch:
            return {}
        return self.engine.apply(batch).vectors


class PopularityBaseline:
    """All-time counts of positive events: what "most popular" means without decay."""

    def __init__(self) -> None:
        self.counts = RankedScores()

    def learn(self, item_id: str) -> None:
        self.counts.add(item_id, 1.0)

    def recommend(self, n: int, exclude: set[str]) -> list[str]:
        return [item_id for item_id, _ in self.counts.top(n, exclude)]


# Events between two drains of the engine's changes: an agent drains once per batch, and the
# co-occurrence lists are trimmed then, so the replay trims as often as an agent applying a
# backlog would (batches of up to PIPELINE_BATCH_SIZE, 5,000, messages).
DRAIN_EVERY = 5000
# Every recommender scored, in report order: the for-you blend, its two components alone,
# the popularity baselines, and related items of the user's previous item.
RECOMMENDERS = ("personal", "factors", "cooccurrence", "popularity", "trending", "related")
# Cold-start defaults: an item is new for a day after it is created or first seen; a user is
# new before their third event with an item.
NEW_ITEM_AGE_MS = 86_400_000
NEW_USER_EVENTS = 3
# Cold items: fewer earlier events naming them than this (what only their text can tell).
COLD_ITEM_EVENTS = 5


@dataclass
class ColdStart:
    """Which cases are cold: new items (by creation or first sight) and new users."""

    new_item_age_ms: int = NEW_ITEM_AGE_MS
    new_user_events: int = NEW_USER_EVENTS
    created_at_ms: Mapping[str, int] = field(default_factory=dict)
    first_seen_ms: dict[str, int] = field(default_factory=dict)
    user_events: dict[str, int] = field(default_factory=dict)
    cold_item_events: int = COLD_ITEM_EVENTS
    item_events: dict[str, int] = field(default_factory=dict)

    def observe(self, event: Event) -> None:
        """Remember what ``event`` reveals (called after the event's case is scored)."""
        for item_id in (event.item_id, *event.items):
            if item_id:
                self.first_seen_ms.setdefault(item_id, event.timestamp_ms)
        if event.item_id:
            self.user_events[event.user_id] = self.user_events.get(event.user_id, 0) + 1
            self.item_events[event.item_id] = self.item_events.get(event.item_id, 0) + 1
        if event.event_type == "login" and event.previous_user_id in self.user_events:
            merged = self.user_events.pop(event.previous_user_id)
            self.user_events[event.user_id] = self.user_events.get(event.user_id, 0) + merged

    def item_is_new(self, item_id: str, timestamp_ms: int) -> bool:
        known = [
            when
            for when in (self.created_at_ms.get(item_id), self.first_seen_ms.get(item_id))
            if when is not None
        ]
        return not known or timestamp_ms - min(known) < self.new_item_age_ms

    def user_is_new(self, user_id: str) -> bool:
        return self.user_events.get(user_id, 0) < self.new_user_events

    def item_is_cold(self, item_id: str) -> bool:
        """Fewer than ``cold_item_events`` earlier events (of any user) named the item."""
        return self.item_events.get(item_id, 0) < self.cold_item_events


class MetItems:
    """Every item each user has interacted with (the events naming one), over the whole log:
    what makes a conversion a case or not. The engine's history holds only the user's last
    ``PIPELINE_HISTORY_LENGTH`` interactions: cases judged by it would grow as it shrinks
    (a conversion of an item clicked long ago, an easy hit, becoming one)."""

    def __init__(self) -> None:
        self._items: dict[str, set[str]] = {}

    def met(self, user_id: str, item_id: str) -> bool:
        found = self._items.get(user_id)
        return found is not None and item_id in found

    def observe(self, event: Event) -> None:
        """Remember ``event``'s item for its user (called after the event's case is scored);
        a login brings the anonymous id's items to the user, a forget drops the user's."""
        user_id = event.user_id
        if event.event_type == FORGET:
            self._items.pop(user_id, None)
        elif event.event_type == "login" and event.previous_user_id is not None:
            moved = self._items.pop(event.previous_user_id, None)
            if moved:
                self._items.setdefault(user_id, set()).update(moved)
        elif event.item_id is not None:
            self._items.setdefault(user_id, set()).add(event.item_id)


def _component_tops(engine: Engine, user_id: str, k: int, seen: set[str]) -> dict[str, list[str]]:
    """The blend's top ``k`` and each component's alone: factors (the model's logits) and
    co-occurrence (neighbours of recent items, ties and empty lists filled by popularity)."""
    parts = engine.recommender.parts(user_id)
    if parts is None:
        return {"personal": [], "factors": [], "cooccurrence": []}
    top = engine.recommender.top
    popularity = engine.neighbours.popularity_vector("click")[: len(parts.factors)]
    popularity = popularity + engine.neighbours.popularity_vector("conversion")[: len(popularity)]
    tiebreak = 1e-9 * popularity / (popularity.max() + 1.0)
    cooccurrence = (parts.neighbours if parts.neighbours is not None else 0.0) + tiebreak
    # The seen items (a thousand for a heavy rater) looked up once for the three rankings,
    # as an array: numpy converts a list of indexes anew at each assignment (20 µs a
    # thousand).
    blocked = np.asarray(engine.recommender.excluded_indexes(seen), dtype=np.int64)
    ranked = {"personal": parts.blend, "factors": parts.factors, "cooccurrence": cooccurrence}
    for scores in ranked.values():
        scores[blocked] = -math.inf
    return {name: [item for item, _ in top(scores, k, set())] for name, scores in ranked.items()}


def evaluate(
    events: Iterable[Event],
    k: int,
    config: PersonalConfig,
    progress: Callable[[int], None] | None = None,
    curve_every: int = 1000,
    cold: ColdStart | None = None,
    catalog: Sequence[Item] = (),
    content: ContentConfig | None = None,
) -> dict[str, Any]:
    """Replay ``events`` (sorted here by timestamp, stable) and return the figures.

    ``cold`` says which cases are cold start (defaults: :class:`ColdStart`); their figures
    are under ``cold_start`` (``new_items``, ``new_users`` and ``cold_items``, each per
    recommender).
    ``catalog`` items with text, vectorised with ``content``, feed the engine's content
    taste; then ``personal_without_content`` is reported too (see the module doc).
    """
    cold = cold or ColdStart()
    ordered = sorted(events, key=lambda event: event.timestamp_ms)
    # Nothing is written: the pair counts of a batch's writes are not summed.
    engine = Engine(config, pair_writes=False)
    feed = None
    if catalog and content is not None and config.content_on:
        feed = ContentFeed(catalog, content)
    # Content off: the configuration without what it learns from the catalog's items (text
    # and creation times): the default engine.
    off = replace(
        config,
        blend=replace(config.blend, content_taste_weight=0.0),
        content_factor_rate=0.0,
        freshness_rate=0.0,
    )
    compare = feed is not None or (bool(catalog) and config.freshness_rate > 0)
    plain = Engine(off, pair_writes=False) if compare else None
    names = (*RECOMMENDERS, WITHOUT_CONTENT) if plain is not None else RECOMMENDERS
    # The catalog's creation times (what makes an item new), as a worker reads them.
    created = {item.item_id: item.created_at_ms for item in catalog}
    for each in (engine, plain):
        if each is not None:
            each.set_created(created)
    feedback = config.feedback
    popularity = PopularityBaseline()
    scores = {name: Scores(k) for name in names}
    new_items = {name: Scores(k) for name in names}
    new_users = {name: Scores(k) for name in names}
    cold_items = {name: Scores(k) for name in names}
    last_item: dict[str, str] = {}
    met = MetItems()
    seen_items: set[str] = set()
    load_kernels(config)
    started = time.perf_counter()
    for count, event in enumerate(ordered, start=1):
        if feed is not None:
            vectors = feed.due(event.timestamp_ms)
            if vectors:
                engine.set_content(vectors)
        if event.item_id:
            seen_items.add(event.item_id)
        seen_items.update(event.items)
        if event.item_id and feedback.is_conversion(event):
            history = engine.histories.get(event.user_id)
            # Only a conversion of an item the user has not met yet is a case.
            if not met.met(event.user_id, event.item_id) and (
                history is None or not history.has_seen(event.item_id)
            ):
                seen = history.seen_items() if history else set()
                target = event.item_id
                tops = _component_tops(engine, event.user_id, k, seen)
                tops["popularity"] = popularity.recommend(k, seen)
                tops["trending"] = [item for item, _ in engine.trending.scores.top(k, seen)]
                if plain is not None:
                    tops[WITHOUT_CONTENT] = [
                        r.item_id for r in plain.recommend(event.user_id, k, exclude=seen)
                    ]
                previous = last_item.get(event.user_id)
                if previous is not None:
                    related = engine.related(previous, k, exclude=seen)
                    tops["related"] = [r.item_id for r in related]
                groups = [scores]
                if cold.item_is_new(target, event.timestamp_ms):
                    groups.append(new_items)
                if cold.user_is_new(event.user_id):
                    groups.append(new_users)
                if cold.item_is_cold(target):
                    groups.append(cold_items)
                for name, ranked in tops.items():
                    for group in groups:
                        group[name].add(ranked, target)
        cold.observe(event)
        met.observe(event)
        engine.learn(event)
        if plain is not None:
            plain.learn(event)
        if count % DRAIN_EVERY == 0:
            engine.drain_changes()
            if plain is not None:
                plain.drain_changes()
        if event.item_id and event.event_type != "blacklist":
            last_item[event.user_id] = event.item_id
            if feedback.is_positive(event):
                popularity.learn(event.item_id)
        if event.event_type == "login" and event.previous_user_id in last_item:
            last_item[event.user_id] = last_item.pop(event.previous_user_id)
        if count % curve_every == 0:
            for figures in scores.values():
                figures.curve.append(figures.hits / max(figures.cases, 1))
        if progress is not None and count % 1000 == 0:
            progress(1000)
    elapsed = time.perf_counter() - started
    if progress is not None:
        progress(len(ordered) % 1000)
    # Items the log names, and any item a recommender served without the log naming it (a
    # catalog item recommended from its text): with or without --catalog, coverage counts
    # the same items and stays at most 1.
    served = set().union(*(figures.recommended for figures in scores.values()))
    size = len(seen_items | served)
    return {
        "events": len(ordered),
        "seconds": elapsed,
        "events_per_second": len(ordered) / elapsed if elapsed > 0 else 0.0,
        "k": k,
        "catalog_size": size,
        **{name: figures.summary(size) for name, figures in scores.items()},
        "cold_start": {
            "new_item_age_s": cold.new_item_age_ms / 1000,
            "new_user_events": cold.new_user_events,
            "new_items": {name: figures.summary(size) for name, figures in new_items.items()},
            "new_users": {name: figures.summary(size) for name, figures in new_users.items()},
            "cold_item_events": cold.cold_item_events,
            "cold_items": {name: figures.summary(size) for name, figures in cold_items.items()},
        },
        "curve_every": curve_every,
        "curves": {name: figures.curve for name, figures in scores.items() if name != "related"},
    }
