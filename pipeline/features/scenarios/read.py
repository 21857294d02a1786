"""Serving one scenario request: each source's candidates through the read side of the
feature that keeps them, then the engine, then the catalog fields asked for.

Round trips: one for the user's history and for-you list, the context items and the catalog's
version; the sources' reads, concurrently; one for the candidates' catalog fields when a
filter, a cap or ``fields`` needs them; two for exploration.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.core.items import new_item_window
from pipeline.core.kept import KeptLists
from pipeline.core.keys import Keys
from pipeline.core.settings import Settings
from pipeline.features.catalog.model import CatalogView
from pipeline.features.catalog.read import (
    Availability,
    item_views,
    newest_items,
    parse_view,
    queue_view,
)
from pipeline.features.personal.read import (
    HistoryView,
    alias_target,
    parse_foryou,
    parse_history,
)
from pipeline.features.ranking.config import ranking_config
from pipeline.features.ranking.read import rank_items
from pipeline.features.related.read import positive_events, read_related
from pipeline.features.scenarios.engine import (
    Candidate,
    ReservedInput,
    SourceList,
    StageInput,
    assemble,
    rerank,
    reserved_slots,
)
from pipeline.features.scenarios.filters import Diversity
from pipeline.features.scenarios.request import (
    ScenarioRequest,
    build_filter,
    item_fields,
    new_recommendation_id,
    restricted,
)
from pipeline.features.scenarios.spec import (
    EditorialSource,
    HistorySource,
    NewItemsSource,
    PersonalSource,
    RelatedSource,
    SourceSpec,
    TrendingSource,
)
from pipeline.features.trending.read import read_trending
from pipeline.store.base import Reads, Store

# Catalog items read for exploration, newest first.
EXPLORATION_DEPTH = 200
EXPLORATION = "exploration"


@dataclass(frozen=True, slots=True)
class Known:
    """What the first round trip learned: the user's history and for-you list, the context
    items' categories, the unavailable items, and whose state it is (``owner``: the user an
    anonymous id became at login, else the request's user; "" for anonymous requests)."""

    history: HistoryView
    foryou: list[dict[str, Any]] | None
    context: tuple[str, ...]
    context_categories: tuple[str, ...]
    hidden: frozenset[str]
    request_categories: tuple[str, ...]
    owner: str = ""


def _ranked(item_id: str, rank: int, source: dict[str, Any]) -> Candidate:
    """A candidate of a source without scores: 1, 1/2, 1/3... by position."""
    return Candidate(item_id, 1.0 / (rank + 1), source)


@dataclass(frozen=True, slots=True)
class Reader:
    store: Store
    keys: Keys
    settings: Settings
    availability: Availability
    # Related and trending lists kept between requests (the reader's); none by default.
    related_lists: KeptLists = field(default_factory=lambda: KeptLists(0))
    trending_lists: KeptLists = field(default_factory=lambda: KeptLists(0))

    async def candidates(
        self, source: SourceSpec, known: Known, depth: int, now_ms: int
    ) -> list[Candidate]:
        """The candidates of one source, best first, at most ``depth`` (before filters)."""
        if isinstance(source, PersonalSource):
            return [
                Candidate(entry["item_id"], float(entry.get("score", 0.0)), _personal(entry))
                for entry in (known.foryou or [])[:depth]
                if entry["item_id"] not in known.hidden
            ]
        if isinstance(source, HistorySource):
            items = known.history.items(source.types)[:depth]
            return [_ranked(item, rank, {"model": "history"}) for rank, item in enumerate(items)]
        if isinstance(source, EditorialSource):
            listed = source.items[:depth]
            return [_ranked(item, rank, {"model": "editorial"}) for rank, item in enumerate(listed)]
        if isinstance(source, RelatedSource):
            return await self._related(source, known, depth)
        if isinstance(source, TrendingSource):
            return await self._trending(source, known, depth, now_ms)
        assert isinstance(source, NewItemsSource)
        info: dict[str, Any] = {"model": "new_items"}
        if source.category is not None:
            info["category"] = source.category
        return [
            Candidate(item_id, float(created_at), info)
            for item_id, created_at in await newest_items(self.store, self.keys, depth)
            if item_id not in known.hidden
        ]

    async def _related(self, source: RelatedSource, known: Known, depth: int) -> list[Candidate]:
        anchors = list(known.context if source.of == "context" else known.history.items())
        anchors = anchors[: source.anchors]
        settings = self.settings
        lists = await asyncio.gather(
            *(
                read_related(
                    self.store,
                    self.keys,
                    self.availability,
                    anchor,
                    source.relation,
                    depth,
                    max(depth, settings.related_max_neighbours),
                    settings.related_discount,
                    self.related_lists,
                )
                for anchor in anchors
            )
        )
        # Several anchors: an item related to more of them ranks higher.
        scores: dict[str, float] = {}
        found: dict[str, dict[str, Any]] = {}
        for anchor, entries in zip(anchors, lists, strict=True):
            for entry in entries:
                item_id = entry["item_id"]
                scores[item_id] = scores.get(item_id, 0.0) + float(entry["score"])
                info = found.setdefault(item_id, {**entry["source"], "source_items": []})
                info["source_items"].append(anchor)
        ranked = sorted(scores, key=lambda item: -scores[item])[:depth]
        return [Candidate(item, scores[item], found[item]) for item in ranked]

    async def _trending(
        self, source: TrendingSource, known: Known, depth: int, now_ms: int
    ) -> list[Candidate]:
        settings = self.settings
        kind = source.kind or next(iter(settings.trending_kinds))
        window = source.window or next(iter(settings.trending_windows))
        categories: Sequence[str | None]
        if source.category == "context":
            categories = known.context_categories
        elif source.category is not None:
            categories = [source.category]
        else:
            # A request narrowed to categories reads their own sets first, then all items.
            categories = [*known.request_categories, None]
        lists = await asyncio.gather(
            *(
                read_trending(
                    self.store,
                    self.keys,
                    self.availability,
                    kind,
                    window,
                    settings.trending_windows[window],
                    category,
                    depth,
                    now_ms,
                    self.trending_lists,
                )
                for category in categories
            )
        )
        best: dict[str, dict[str, Any]] = {}
        for entries in lists:
            for entry in entries:
                if entry["score"] > best.get(entry["item_id"], {"score": -1.0})["score"]:
                    best[entry["item_id"]] = entry
        ranked = sorted(best.values(), key=lambda entry: -entry["score"])[:depth]
        return [Candidate(e["item_id"], e["score"], e["source"]) for e in ranked]

    async def exploration(
        self, known: Known, now_ms: int, seed: str, category: str | None
    ) -> list[Candidate]:
        """New and little-seen items (:func:`~pipeline.core.items.new_item_window`, fewer than
        ``exploration_max_events`` positive events), in a random order seeded by ``seed``."""
        settings = self.settings
        since, until = new_item_window(now_ms, settings.new_item_days, settings.max_future_skew_s)
        newest = await newest_items(self.store, self.keys, EXPLORATION_DEPTH, since, until)
        fresh = [item for item, _ in newest if item not in known.hidden]
        seen = await positive_events(self.store, self.keys, fresh)
        chosen = [item for item in fresh if seen[item] < settings.exploration_max_events]
        random.Random(seed).shuffle(chosen)
        info: dict[str, Any] = {"model": "new_items"}
        if category is not None:
            info["category"] = category
        return [_ranked(item, rank, info) for rank, item in enumerate(chosen)]

    async def known(self, request: ScenarioRequest) -> Known:
        """The first round trip: history, for-you list, context items, catalog version."""
        user = request.user_id
        scenario = request.scenario
        sources = [s for stage in scenario.stages for s in stage.sources]
        sources += [s for promotion in scenario.promotions for s in promotion.sources]
        wants_foryou = user is not None and any(isinstance(s, PersonalSource) for s in sources)
        reads = Reads()
        if user is not None:
            reads.get(self.keys.user_history(user))
            reads.get(self.keys.user_alias(user))
        if wants_foryou:
            assert user is not None
            reads.get(self.keys.foryou(user))
        for item_id in request.context:
            queue_view(reads, self.keys, item_id)
        self.availability.queue(reads)
        answers = list(await self.store.read(reads))
        stored = answers.pop(0) if user is not None else None
        target = alias_target(answers.pop(0)) if user is not None else None
        listed = answers.pop(0) if wants_foryou else None
        if target is not None:
            # An anonymous id that logged in: its state moved to the user it became.
            again = Reads().get(self.keys.user_history(target))
            if wants_foryou:
                again.get(self.keys.foryou(target))
            stored, *rest = await self.store.read(again)
            listed = rest[0] if rest else None
        history = parse_history(stored)
        foryou = parse_foryou(listed) if wants_foryou else None
        hidden = await self.availability.settle(self.store, answers.pop())
        categories = {c: None for row in answers for c in parse_view(row).categories}
        return Known(
            history,
            foryou,
            request.context,
            tuple(categories),
            hidden,
            request.categories or tuple(request.scenario.spec.filters.categories),
            target or user or "",
        )


def _personal(entry: dict[str, Any]) -> dict[str, Any]:
    source = {k: v for k, v in entry.get("source", {}).items() if k != "stage"}
    source.setdefault("model", "personal")
    return source


async def recommend(reader: Reader, request: ScenarioRequest, now_ms: int) -> dict[str, Any]:
    """The response body of ``GET /v1/recommendations`` for a validated request."""
    scenario = request.scenario
    rid = new_recommendation_id(scenario.name)
    known = await reader.known(request)
    rule = build_filter(request, known.history.excluded, known.history.items())
    depth = request.depth

    async def source_lists(sources: Sequence[SourceSpec]) -> list[SourceList]:
        found = await asyncio.gather(
            *(reader.candidates(source, known, depth, now_ms) for source in sources)
        )
        return [SourceList(s.weight, c) for s, c in zip(sources, found, strict=True)]

    stage_lists = await asyncio.gather(*(source_lists(stage.sources) for stage in scenario.stages))
    promotion_lists = await asyncio.gather(*(source_lists(p.sources) for p in scenario.promotions))
    exploration = scenario.spec.exploration
    explored = (
        await reader.exploration(known, now_ms, rid, exploration.category)
        if exploration is not None
        else []
    )
    reserved = [
        ReservedInput(
            promotion.name,
            "promoted",
            reserved_slots(promotion.share, request.n),
            rule.narrowed(
                promotion.categories,
                tuple(b for c in promotion.conditions if (b := c.bind(request.params))),
            ),
            lists,
        )
        for promotion, lists in zip(scenario.promotions, promotion_lists, strict=True)
    ]
    if exploration is not None:
        narrowed = rule.narrowed((exploration.category,) if exploration.category else (), ())
        slots = reserved_slots(exploration.share, request.n)
        reserved.append(
            ReservedInput(EXPLORATION, "explore", slots, narrowed, [SourceList(1.0, explored)])
        )
    candidates = [
        c for lists in (*stage_lists, *promotion_lists) for s in lists for c in s.candidates
    ]
    ids = sorted({c.item_id for c in candidates} | {c.item_id for c in explored})
    views: dict[str, CatalogView]
    if request.needs_views or explored:
        views = await item_views(reader.store, reader.keys, ids, known.hidden)
    else:
        views = {item_id: CatalogView(available=item_id not in known.hidden) for item_id in ids}
    stages = [
        StageInput(stage.name, restricted(stage.sources, lists, views, known.context_categories))
        for stage, lists in zip(scenario.stages, stage_lists, strict=True)
    ]
    spec = scenario.spec.filters
    diversity = Diversity(spec.max_per_category, dict(spec.max_per_attribute))
    items = assemble(stages, reserved, views, rule, diversity, request.n)
    if scenario.spec.rerank == "ranking" and items:
        # Anonymous requests are ranked by the item, category and context features alone; an
        # anonymous id that logged in as the user it became.
        ranked = await rank_items(
            reader.store,
            reader.keys,
            known.owner,
            [item["item_id"] for item in items],
            request.request_context,
            ranking_config(reader.settings),
            now_ms,
        )
        items = rerank(items, {entry["item_id"]: entry["score"] for entry in ranked})
    for item in items:
        item["recommendation_id"] = f"{rid}:{item['source']['stage']}"
        if request.fields:
            item["item"] = item_fields(views.get(item["item_id"], CatalogView()), request.fields)
    return {
        "recommendation_id": rid,
        "scenario": scenario.name,
        "user_id": request.user_id,
        "generated_at": now_ms,
        "items": items,
    }
