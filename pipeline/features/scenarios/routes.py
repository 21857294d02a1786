"""Scenario endpoints: ``GET /v1/recommendations``, ``GET /v1/scenarios`` and
``GET /v1/scenarios/{name}/stats``.

``scenarios.yaml`` is loaded and checked when the router is built (the reader's start): a
mistake stops the reader with a message naming the file, the scenario and the key.
Unknown query parameters are refused (422), never ignored (``request.py``).
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from pipeline.api.deps import Context
from pipeline.api.http import ERRORS, ErrorBody, OrjsonResponse, error_response
from pipeline.core.events import EVENT_TYPES
from pipeline.core.ids import InvalidInput
from pipeline.core.settings import Settings
from pipeline.features.attribution.read import ServedCounter, scenario_stats, window_hours
from pipeline.features.scenarios.config import load_scenarios
from pipeline.features.scenarios.read import Reader, recommend
from pipeline.features.scenarios.request import ITEM_FIELDS, MAX_N, parse_request
from pipeline.features.scenarios.spec import NAME, Scenario, check_references

UNKNOWN: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No scenario of that name."}
}


def scenarios_router(settings: Settings) -> APIRouter:
    scenarios = load_scenarios(settings.scenarios_file)
    check_references(
        scenarios,
        set(settings.trending_kinds),
        set(settings.trending_windows),
        set(EVENT_TYPES),
        settings.scenarios_file,
    )
    router = APIRouter()
    served: dict[str, ServedCounter] = {}

    def counter(ctx: Any) -> ServedCounter:
        # One per key namespace (tests build several apps in one process).
        found = served.get(ctx.keys.prefix)
        if found is None:
            found = served[ctx.keys.prefix] = ServedCounter(ctx.keys, settings.stats_retention_days)
        return found

    def scenario_named(name: str) -> Scenario:
        found = scenarios.get(name)
        if found is None:
            raise LookupError(name)
        return found

    @router.get(
        "/v1/recommendations",
        responses={**ERRORS, **UNKNOWN},
        summary="Recommendations of a scenario",
        description=(
            "Items for one page of a website, as the named scenario (scenarios.yaml) defines "
            "them: its stages in order, each filling what the ones above could not, with the "
            "scenario's filters and the request's. Parameters: `scenario` (required), "
            "`user_id`, `item_id` (repeatable: the context items, e.g. the product shown), "
            f"`n` (1-{MAX_N}; fewer items come back only when no stage has more that pass the "
            "filters), `exclude` (ids, repeatable or comma-separated), `category` and "
            "`exclude_category` (category paths: a parent matches its children), "
            "`exclude_viewed` (true/false), `fields` (catalog fields to attach: "
            f"{', '.join(ITEM_FIELDS)}), `context.{{key}}` or `context` (a JSON object: the "
            "request context, e.g. the device; scenarios with `rerank: ranking` order their "
            "answer by the click model in it), and the parameters the scenario declares (see "
            "`GET /v1/scenarios`). Unknown parameters are refused. The answer's "
            "`recommendation_id`, or better each item's, sent back with impressions, clicks "
            "and conversions, credits them to the scenario and stage."
        ),
        openapi_extra={
            "parameters": [
                {
                    "name": "scenario",
                    "in": "query",
                    "required": True,
                    "schema": {"type": "string"},
                    "example": "home",
                },
                {"name": "user_id", "in": "query", "schema": {"type": "string"}, "example": "u1"},
                {
                    "name": "item_id",
                    "in": "query",
                    "schema": {"type": "array", "items": {"type": "string"}},
                },
                {
                    "name": "n",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_N, "default": 10},
                },
                {
                    "name": "exclude",
                    "in": "query",
                    "schema": {"type": "array", "items": {"type": "string"}},
                },
                {
                    "name": "category",
                    "in": "query",
                    "schema": {"type": "array", "items": {"type": "string"}},
                },
                {
                    "name": "exclude_category",
                    "in": "query",
                    "schema": {"type": "array", "items": {"type": "string"}},
                },
                {"name": "exclude_viewed", "in": "query", "schema": {"type": "boolean"}},
                {
                    "name": "fields",
                    "in": "query",
                    "schema": {"type": "string"},
                    "example": "title,price",
                },
            ]
        },
    )
    async def recommendations(ctx: Context, request: Request) -> Response:
        query = [(k, v) for k, v in request.query_params.multi_items()]
        name = next((v for k, v in query if k == "scenario"), None)
        if name is None:
            return error_response(422, "invalid_request", "scenario is required")
        try:
            scenario = scenario_named(name)
        except LookupError:
            return error_response(
                404, "unknown_scenario", f"no scenario {name!r}; known: {sorted(scenarios)}"
            )
        parsed = parse_request(scenario, [(k, v) for k, v in query if k != "scenario"])
        reader = Reader(
            ctx.store, ctx.keys, settings, ctx.availability, ctx.related_lists, ctx.trending_lists
        )
        now_ms = int(time.time() * 1000)
        async with ctx.bounded():
            body = await recommend(reader, parsed, now_ms)
        stages: dict[str, int] = {}
        for item in body["items"]:
            stage = item["source"]["stage"]
            stages[stage] = stages.get(stage, 0) + 1
        counter(ctx).add(ctx.store, scenario.name, stages, now_ms)
        return OrjsonResponse(body)

    @router.get(
        "/v1/scenarios",
        summary="Scenarios",
        description="Every scenario of scenarios.yaml: its parameters, filters and stages.",
    )
    async def list_scenarios() -> Response:
        return OrjsonResponse({"scenarios": [s.describe() for s in scenarios.values()]})

    @router.get(
        "/v1/scenarios/{name}/stats",
        responses=ERRORS,
        summary="Statistics of a scenario",
        description=(
            "Items served, impressions, clicks and conversions credited to the scenario over "
            "the window (`1h`-`31d`; hours or days), in total, per stage and for the most "
            "clicked items, with click-through and conversion rates (over impressions when "
            "the website sends them, else over items served: `basis`). Campaign names from "
            "the segment endpoints' `scenario` work too (`defined`: false)."
        ),
    )
    async def stats(
        ctx: Context,
        name: str,
        window: str = Query("1d", description="Hours or days: 1h, 6h, 1d, 7d.", examples=["1d"]),
    ) -> Response:
        if not NAME.match(name):
            raise InvalidInput("a scenario or campaign name uses letters, digits, _ and -")
        hours = window_hours(window, settings.stats_retention_days)
        now_ms = int(time.time() * 1000)
        async with ctx.bounded():
            body = await scenario_stats(ctx.store, ctx.keys, name, hours, now_ms)
        # Campaigns (segments' recommendation ids) are counted under names of their own.
        return OrjsonResponse({**body, "window": window, "defined": name in scenarios})

    return router
