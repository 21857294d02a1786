"""One scenario request: its parameters parsed and checked, its filter built, and the rules
that depend on it alone (pure).

Unknown query parameters are refused, never ignored: a typo in a filter must not pass
silently.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.core.ids import InvalidInput, check_id
from pipeline.core.request_context import CONTEXT_PREFIX, parse_context
from pipeline.features.catalog.model import CatalogView
from pipeline.features.scenarios.engine import SourceList
from pipeline.features.scenarios.filters import Filter, in_category, request_value
from pipeline.features.scenarios.spec import (
    RESERVED_PARAMS,
    Scenario,
    SourceSpec,
)

# Longest list a scenario answers, most context items and explicit exclusions.
MAX_N = 100
DEFAULT_N = 10
MAX_CONTEXT = 20
MAX_EXCLUDE = 500
# Catalog fields a response may attach to its items (``fields=``).
ITEM_FIELDS = ("title", "price", "categories", "attributes", "created_at", "available")


@dataclass(frozen=True, slots=True)
class ScenarioRequest:
    """One validated request: the scenario, whom and what it is for, and its filters."""

    scenario: Scenario
    n: int = DEFAULT_N
    user_id: str | None = None
    context: tuple[str, ...] = ()
    exclude: frozenset[str] = frozenset()
    categories: tuple[str, ...] = ()
    exclude_categories: tuple[str, ...] = ()
    exclude_viewed: bool | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    fields: tuple[str, ...] = ()
    # The request context (device, page, ...): what ``rerank`` scores the answer in.
    request_context: Mapping[str, str | int | float] = field(default_factory=dict)

    @property
    def depth(self) -> int:
        """Candidates read per source: more when filters are narrow, so that enough pass."""
        spec = self.scenario.spec.filters
        narrow = (
            self.categories
            or spec.categories
            or self.scenario.conditions
            or spec.max_per_category
            or spec.max_per_attribute
        )
        return (6 if narrow else 3) * self.n + 20

    @property
    def needs_views(self) -> bool:
        """Whether any rule or the answer needs the candidates' catalog fields."""
        spec = self.scenario.spec
        return bool(
            self.fields
            or self.categories
            or self.exclude_categories
            or spec.filters.categories
            or spec.filters.exclude_categories
            or self.scenario.conditions
            or spec.filters.max_per_category
            or spec.filters.max_per_attribute
            or self.scenario.promotions
            or any(getattr(s, "category", None) for stage in spec.stages for s in stage.sources)
        )


def new_recommendation_id(scenario: str) -> str:
    """``{scenario}:{16 hex}``: unique, and names its scenario (attribution reads it back)."""
    return f"{scenario}:{secrets.token_hex(8)}"


def parse_request(scenario: Scenario, query: Sequence[tuple[str, str]]) -> ScenarioRequest:
    """The query string of ``GET /v1/recommendations`` (without ``scenario``) as a request;
    :class:`InvalidInput` names the first parameter that is wrong."""
    values: dict[str, list[str]] = {}
    for name, value in query:
        values.setdefault(name, []).append(value)
    declared = scenario.spec.params
    named = {name for name in values if name.startswith(CONTEXT_PREFIX)}
    unknown = sorted(set(values) - RESERVED_PARAMS - set(declared) - named)
    if unknown:
        known = sorted((RESERVED_PARAMS - {"api_key", "scenario"}) | set(declared))
        raise InvalidInput(f"unknown parameters {unknown}; this scenario takes {known}")

    def one(name: str) -> str | None:
        found = values.get(name)
        if found is None:
            return None
        if len(found) != 1:
            raise InvalidInput(f"{name} takes one value")
        return found[0]

    def ids(name: str, limit: int) -> list[str]:
        out = [part for entry in values.get(name, []) for part in entry.split(",") if part]
        if len(out) > limit:
            raise InvalidInput(f"{name}: at most {limit} ids")
        return [check_id(entry, name) for entry in out]

    n_text = one("n")
    if n_text is not None and (not n_text.isdigit() or not 1 <= int(n_text) <= MAX_N):
        raise InvalidInput(f"n must be a whole number in 1-{MAX_N}")
    user = one("user_id")
    fields = [f for entry in values.get("fields", []) for f in entry.split(",") if f]
    bad_fields = sorted(set(fields) - set(ITEM_FIELDS))
    if bad_fields:
        raise InvalidInput(f"fields: unknown {bad_fields}; known: {list(ITEM_FIELDS)}")
    viewed = one("exclude_viewed")
    if viewed not in (None, "true", "false"):
        raise InvalidInput("exclude_viewed must be true or false")
    params = {
        name: request_value(declared[name].type, raw, name)
        for name, raw in values.items()
        if name in declared
    }
    request_context = parse_context(one("context"), {n: one(n) or "" for n in named})
    missing = [name for name, p in declared.items() if p.required and name not in params]
    if missing:
        raise InvalidInput(f"scenario {scenario.name!r} needs the parameters {missing}")
    return ScenarioRequest(
        scenario=scenario,
        n=DEFAULT_N if n_text is None else int(n_text),
        user_id=None if user is None else check_id(user, "user_id"),
        context=tuple(dict.fromkeys(ids("item_id", MAX_CONTEXT))),
        exclude=frozenset(ids("exclude", MAX_EXCLUDE)),
        categories=tuple(ids("category", MAX_CONTEXT)),
        exclude_categories=tuple(ids("exclude_category", MAX_CONTEXT)),
        exclude_viewed=None if viewed is None else viewed == "true",
        params=params,
        fields=tuple(dict.fromkeys(fields)),
        request_context=request_context,
    )


def build_filter(
    request: ScenarioRequest, user_excluded: Collection[str], viewed: Collection[str]
) -> Filter:
    """The request's filter: the user's exclusions (``user_excluded``: bought, consumed,
    rated, blacklisted), the context items, ``exclude``, the scenario's filters and the request's
    own on top; ``viewed`` items too when ``exclude_viewed`` says so."""
    scenario = request.scenario
    spec = scenario.spec.filters
    excluded = set(user_excluded) | set(request.exclude) | set(request.context)
    if spec.exclude_viewed if request.exclude_viewed is None else request.exclude_viewed:
        excluded |= set(viewed)
    conditions = tuple(
        bound for c in scenario.conditions if (bound := c.bind(request.params)) is not None
    )
    return Filter(
        excluded=frozenset(excluded),
        available_only=spec.available_only,
        categories=request.categories or tuple(spec.categories),
        exclude_categories=tuple(spec.exclude_categories) + request.exclude_categories,
        conditions=conditions,
    )


def restricted(
    specs: Sequence[SourceSpec],
    lists: Sequence[SourceList],
    views: Mapping[str, CatalogView],
    context_categories: tuple[str, ...],
) -> list[SourceList]:
    """Candidates of a source restricted to a category (``new_items``) that lie in it;
    trending reads its category's own set and needs no pass."""
    out = []
    for spec, found in zip(specs, lists, strict=True):
        category: str | None = getattr(spec, "category", None)
        if category is None or spec.source == "trending":
            out.append(found)
            continue
        paths = context_categories if category == "context" else (category,)
        if not paths:
            out.append(found)
            continue
        kept = [
            c
            for c in found.candidates
            if in_category(views.get(c.item_id, CatalogView()).categories, paths)
        ]
        out.append(SourceList(found.weight, kept))
    return out


def item_fields(view: CatalogView, names: Sequence[str]) -> dict[str, Any]:
    """The catalog fields ``names`` (of :data:`ITEM_FIELDS`) of one item, for ``fields=``."""
    values = {
        "title": view.title,
        "price": view.price,
        "categories": list(view.categories),
        "attributes": dict(view.attributes),
        "created_at": view.created_at_ms,
        "available": view.available,
    }
    return {name: values[name] for name in names}
