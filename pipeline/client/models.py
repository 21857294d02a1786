"""What the client returns: frozen dataclasses parsed from the services' JSON answers.

Each ``parse_*`` function takes a decoded JSON body and returns the dataclass, or raises
``KeyError``/``TypeError``/``ValueError`` when the body is not the documented shape (the
client turns those into :class:`~pipeline.client.errors.UnexpectedResponse`). Fields the
services may add later are ignored, so a newer server does not break an older client.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class IndexResult:
    """The outcome of element ``index`` of a ``track`` or ``publish_items`` request.

    ``id`` is the ``event_id`` (events) or ``item_id`` (items) of an accepted element;
    ``reason`` says why a rejected one was rejected.
    """

    index: int
    accepted: bool
    id: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class BatchResult:
    """The collector's answer to ``track`` or ``publish_items``: counts and one result per
    element, in request order. ``accepted`` means acknowledged by Kafka."""

    accepted: int
    rejected: int
    results: tuple[IndexResult, ...]

    @property
    def rejections(self) -> dict[int, str]:
        """Index -> reason of every rejected element (empty when all were accepted)."""
        return {r.index: r.reason or "rejected" for r in self.results if not r.accepted}

    @property
    def accepted_ids(self) -> list[str]:
        """The ids of the accepted elements, in request order."""
        return [r.id for r in self.results if r.accepted and r.id is not None]


@dataclass(frozen=True, slots=True)
class Recommended:
    """One recommended item: ``source`` says where it came from (``stage``, ``model``, ...);
    ``item`` holds the catalog fields asked for with ``fields`` (else None)."""

    item_id: str
    score: float
    source: dict[str, Any]
    item: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Recommendations:
    """An answer of ``GET /v1/recommendations``. Send ``recommendation_id`` back with the
    impression, click and buy events of these items so the scenario's stats count them."""

    recommendation_id: str
    scenario: str
    user_id: str | None
    generated_at: int
    items: tuple[Recommended, ...]


@dataclass(frozen=True, slots=True)
class ForYou:
    """A user's for-you list; ``stage`` is ``personal``, ``cold_start`` or ``fallback``."""

    user_id: str
    stage: str
    generated_at: int
    items: tuple[Recommended, ...]


@dataclass(frozen=True, slots=True)
class Related:
    """Items related to ``item_id`` by ``relation`` (``blend`` when none was asked for)."""

    item_id: str
    relation: str
    items: tuple[Recommended, ...]


@dataclass(frozen=True, slots=True)
class Trending:
    """Trending items of one event kind, window and (optional) category."""

    kind: str
    window: str
    category: str | None
    generated_at: int
    items: tuple[Recommended, ...]


@dataclass(frozen=True, slots=True)
class Ranking:
    """The caller's items ordered for ``user_id``, best first (``score`` = P(click))."""

    user_id: str
    items: tuple[Recommended, ...]


@dataclass(frozen=True, slots=True)
class Scenario:
    """A declared scenario: its parameters (name -> declaration) and its stages."""

    name: str
    description: str
    params: dict[str, Any]
    stages: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Funnel:
    """Counts of a scenario (or one of its stages) over a window. Rates are over
    impressions when the website reports them, else over items served (``basis`` says
    which); None when there is nothing to divide by."""

    served: int
    impressions: int
    clicks: int
    conversions: int
    click_through_rate: float | None
    conversion_rate: float | None
    basis: str | None = None


@dataclass(frozen=True, slots=True)
class ScenarioStats:
    """``GET /v1/scenarios/{name}/stats``: totals, per-stage funnels and per-item rows."""

    scenario: str
    window: str
    totals: Funnel
    stages: dict[str, Funnel]
    items: tuple[dict[str, Any], ...]
    window_hours: int | None = None
    #: False for a name that scenarios.yaml does not define (a campaign's, from segments).
    defined: bool = True


def _object(raw: Any, what: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise TypeError(f"{what} is not a JSON object")
    return raw


def _items(raw: Any) -> tuple[Recommended, ...]:
    if not isinstance(raw, list):
        raise TypeError("items is not a JSON list")
    return tuple(parse_recommended(entry) for entry in raw)


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def parse_batch(raw: Any, id_field: str) -> BatchResult:
    """``{"accepted", "rejected", "results": [{"index", "status", <id_field>, "reason"}]}``."""
    body = _object(raw, "the answer")
    results = []
    for entry in body["results"]:
        row = _object(entry, "a result")
        results.append(
            IndexResult(
                index=int(row["index"]),
                accepted=row["status"] == "accepted",
                id=_optional_str(row.get(id_field)),
                reason=_optional_str(row.get("reason")),
            )
        )
    return BatchResult(int(body["accepted"]), int(body["rejected"]), tuple(results))


def parse_recommended(raw: Any) -> Recommended:
    row = _object(raw, "an item")
    item = row.get("item")
    return Recommended(
        item_id=str(row["item_id"]),
        score=float(row["score"]),
        source=dict(_object(row.get("source", {}), "source")),
        item=None if item is None else dict(_object(item, "item")),
    )


def parse_recommendations(raw: Any) -> Recommendations:
    body = _object(raw, "the answer")
    return Recommendations(
        recommendation_id=str(body["recommendation_id"]),
        scenario=str(body["scenario"]),
        user_id=_optional_str(body.get("user_id")),
        generated_at=int(body.get("generated_at", 0)),
        items=_items(body["items"]),
    )


def parse_for_you(raw: Any) -> ForYou:
    body = _object(raw, "the answer")
    return ForYou(
        user_id=str(body["user_id"]),
        stage=str(body["stage"]),
        generated_at=int(body.get("generated_at", 0)),
        items=_items(body["items"]),
    )


def parse_related(raw: Any) -> Related:
    body = _object(raw, "the answer")
    return Related(str(body["item_id"]), str(body.get("relation", "blend")), _items(body["items"]))


def parse_trending(raw: Any) -> Trending:
    body = _object(raw, "the answer")
    return Trending(
        kind=str(body["kind"]),
        window=str(body["window"]),
        category=_optional_str(body.get("category")),
        generated_at=int(body.get("generated_at", 0)),
        items=_items(body["items"]),
    )


def parse_ranking(raw: Any) -> Ranking:
    body = _object(raw, "the answer")
    return Ranking(str(body["user_id"]), _items(body["items"]))


def parse_scenarios(raw: Any) -> list[Scenario]:
    body = _object(raw, "the answer")
    scenarios = []
    for entry in body["scenarios"]:
        row = _object(entry, "a scenario")
        scenarios.append(
            Scenario(
                name=str(row["name"]),
                description=str(row.get("description") or ""),
                params=dict(_object(row.get("params", {}), "params")),
                stages=tuple(row.get("stages") or ()),
            )
        )
    return scenarios


def parse_funnel(raw: Any) -> Funnel:
    """Counts absent from a row are 0 and rates None: stage rows may carry fewer."""
    row = _object(raw, "a funnel")
    return Funnel(
        served=int(row.get("served", 0)),
        impressions=int(row.get("impressions", 0)),
        clicks=int(row.get("clicks", 0)),
        conversions=int(row.get("conversions", 0)),
        click_through_rate=_optional_float(row.get("click_through_rate")),
        conversion_rate=_optional_float(row.get("conversion_rate")),
        basis=_optional_str(row.get("basis")),
    )


def parse_stats(raw: Any) -> ScenarioStats:
    body = _object(raw, "the answer")
    stages = _object(body.get("stages", {}), "stages")
    return ScenarioStats(
        scenario=str(body["scenario"]),
        window=str(body["window"]),
        totals=parse_funnel(body),
        stages={str(name): parse_funnel(row) for name, row in stages.items()},
        items=tuple(dict(_object(row, "an item row")) for row in body.get("items", ())),
        window_hours=None if body.get("window_hours") is None else int(body["window_hours"]),
        defined=bool(body.get("defined", True)),
    )
