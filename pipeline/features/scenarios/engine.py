"""The scenario engine: from candidates to the list served, as a pure function.

Reserved groups (promotions, exploration) are filled first, each up to its share of the slots;
then the stages, in order, fill the remaining slots, each lower stage only what the upper
ones could not; reserved items are then spread evenly through the list. Every item passes the
request's :class:`~pipeline.features.scenarios.filters.Filter` (a reserved group's narrowed
one) and the diversity caps, and appears once.

Within a stage, each source's scores are scaled to its best item and weighted; an item found
by several sources sums its parts and names the source that gave the largest part. Scores of
different stages are not comparable: order is stage first, then score.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.features.catalog.model import CatalogView
from pipeline.features.scenarios.filters import Diversity, Filter

_UNKNOWN = CatalogView()


@dataclass(frozen=True, slots=True)
class Candidate:
    """One item a source offers, with its own score and where it came from."""

    item_id: str
    score: float
    source: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class SourceList:
    """A source's candidates, best first, and the weight the stage gives it."""

    weight: float
    candidates: Sequence[Candidate]


@dataclass(frozen=True, slots=True)
class StageInput:
    name: str
    sources: Sequence[SourceList]


@dataclass(frozen=True, slots=True)
class ReservedInput:
    """A promotion or the exploration: ``slots`` places, filled through ``filter``."""

    name: str
    kind: str
    slots: int
    filter: Filter
    sources: Sequence[SourceList] = field(default_factory=tuple)


def reserved_slots(share: float, n: int) -> int:
    """Places a group with ``share`` of the list gets: rounded half up."""
    return min(n, int(share * n + 0.5))


def blend(stage: StageInput) -> list[Candidate]:
    """One stage's sources merged: scaled, weighted, summed per item, best first."""
    totals: dict[str, float] = {}
    best: dict[str, tuple[float, Mapping[str, Any]]] = {}
    order: dict[str, int] = {}
    for source in stage.sources:
        top = max((c.score for c in source.candidates), default=0.0)
        for rank, candidate in enumerate(source.candidates):
            # Scaled to the source's best; a source without positive scores ranks by order.
            scaled = candidate.score / top if top > 0 else 1.0 / (rank + 1)
            part = source.weight * scaled
            item_id = candidate.item_id
            totals[item_id] = totals.get(item_id, 0.0) + part
            order.setdefault(item_id, len(order))
            if item_id not in best or part > best[item_id][0]:
                best[item_id] = (part, candidate.source)
    ranked = sorted(totals, key=lambda item: (-totals[item], order[item]))
    return [
        Candidate(item_id, totals[item_id], {**best[item_id][1], "stage": stage.name})
        for item_id in ranked
    ]


def assemble(
    stages: Sequence[StageInput],
    reserved: Sequence[ReservedInput],
    views: Mapping[str, CatalogView],
    request_filter: Filter,
    diversity: Diversity,
    n: int,
) -> list[dict[str, Any]]:
    """The list served: at most ``n`` items, each ``{"item_id", "score", "source"}``."""
    taken: set[str] = set()

    def fill(candidates: Sequence[Candidate], rule: Filter, room: int) -> list[Candidate]:
        chosen: list[Candidate] = []
        for candidate in candidates:
            if len(chosen) >= room:
                break
            item_id = candidate.item_id
            if item_id in taken:
                continue
            view = views.get(item_id, _UNKNOWN)
            if not rule.admits(item_id, view) or not diversity.allows(view):
                continue
            diversity.take(view)
            taken.add(item_id)
            chosen.append(candidate)
        return chosen

    held: list[tuple[ReservedInput, list[Candidate]]] = []
    for group in reserved:
        if group.slots <= 0:
            continue
        merged = blend(StageInput(group.name, group.sources))
        picked = fill(merged, group.filter, group.slots)
        marked = [
            Candidate(c.item_id, c.score, {**c.source, "stage": group.name, group.kind: True})
            for c in picked
        ]
        held.append((group, marked))
    extra = [candidate for _, picked in held for candidate in picked]
    regular: list[Candidate] = []
    for stage in stages:
        room = n - len(extra) - len(regular)
        if room <= 0:
            break
        regular.extend(fill(blend(stage), request_filter, room))
    ordered = spread(regular, extra, n)
    return [{"item_id": c.item_id, "score": c.score, "source": dict(c.source)} for c in ordered]


def spread(regular: Sequence[Candidate], extra: Sequence[Candidate], n: int) -> list[Candidate]:
    """``extra`` placed at evenly spaced positions among ``regular`` (first at about half a
    gap from the top), the rest in order."""
    total = min(n, len(regular) + len(extra))
    if not extra:
        return list(regular[:total])
    gap = total / len(extra)
    positions = {min(total - 1, int(gap * (i + 0.5))) for i in range(len(extra))}
    # Collisions (tiny lists) fall back to the next free place.
    while len(positions) < min(len(extra), total):
        positions.add(next(p for p in range(total) if p not in positions))
    out: list[Candidate] = []
    regular_iter, extra_iter = iter(regular), iter(extra)
    for position in range(total):
        source = extra_iter if position in positions else regular_iter
        chosen = next(source, None)
        if chosen is None:
            chosen = next(regular_iter if source is extra_iter else extra_iter, None)
        if chosen is None:
            break
        out.append(chosen)
    return out


def rerank(items: Sequence[dict[str, Any]], scores: Mapping[str, float]) -> list[dict[str, Any]]:
    """``items`` (as :func:`assemble` returns them) with the regular ones re-ordered by
    ``scores`` (best first; ties and unscored items keep their order, unscored last) in the
    places regular items held; promoted and explored items keep their places. Each re-ordered
    item's source gains ``rerank: {"model": "ranking", "score": ...}``."""
    slots = [i for i, item in enumerate(items) if not _reserved(item)]
    regular = [items[i] for i in slots]
    order = sorted(
        range(len(regular)),
        key=lambda i: (
            regular[i]["item_id"] not in scores,
            -scores.get(regular[i]["item_id"], 0.0),
        ),
    )
    out = [dict(item) for item in items]
    for slot, index in zip(slots, order, strict=True):
        item = dict(regular[index])
        score = scores.get(item["item_id"])
        if score is not None:
            item["source"] = {**item["source"], "rerank": {"model": "ranking", "score": score}}
        out[slot] = item
    return out


def _reserved(item: Mapping[str, Any]) -> bool:
    source = item.get("source", {})
    return bool(source.get("promoted") or source.get("explore"))
