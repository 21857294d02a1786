"""``GET /v1/trending``: forward-decayed trending items, best first.

200 ``{"kind", "window", "category", "generated_at", "items": [{"item_id", "score", "source":
{"model": "trending", "kind", "window", "category"}}]}``; 422 for a bad parameter (the detail
names the allowed values); 503 when Redis is down or slow.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel

from pipeline.api.deps import MAX_ITEMS, Context, ServiceContext
from pipeline.api.fast import FastRoute, small_int
from pipeline.api.http import ERRORS, OrjsonResponse
from pipeline.api.limits import CountLimit, count_limit
from pipeline.core.ids import InvalidInput, check_id, valid_id
from pipeline.core.settings import Settings
from pipeline.features.trending.read import read_trending

DEFAULT_N = 10


def trending_limit(settings: Settings) -> CountLimit:
    """``n`` up to the items kept per trending set."""
    return count_limit(
        settings,
        "trending_max_items",
        MAX_ITEMS,
        DEFAULT_N,
        "items",
        "each trending set keeps {cap} items",
    )


class ItemSource(BaseModel):
    model: str
    kind: str
    window: str
    category: str | None


class TrendingItem(BaseModel):
    item_id: str
    score: float
    source: ItemSource


class TrendingResponse(BaseModel):
    kind: str
    window: str
    category: str | None
    generated_at: int
    items: list[TrendingItem]


def choice(value: str, allowed: dict[str, Any], name: str) -> None:
    """422 naming the allowed values unless ``value`` is one of them."""
    if value not in allowed:
        raise InvalidInput(f"unknown {name} {value!r}; allowed: {', '.join(allowed)}")


async def answer(
    ctx: ServiceContext, kind: str, window: str, category: str | None, n: int
) -> dict[str, Any]:
    """The response body for valid parameters."""
    now_ms = int(time.time() * 1000)
    half_life = ctx.settings.trending_windows[window]
    async with ctx.bounded():
        items = await read_trending(
            ctx.store,
            ctx.keys,
            ctx.availability,
            kind,
            window,
            half_life,
            category,
            n,
            now_ms,
            ctx.trending_lists,
        )
    body = {"kind": kind, "window": window, "category": category, "generated_at": now_ms}
    return {**body, "items": items}


def fast_routes(settings: Settings) -> list[FastRoute]:
    kinds, windows = settings.trending_kinds, settings.trending_windows
    default_kind, default_window = next(iter(kinds)), next(iter(windows))
    limit = trending_limit(settings)

    async def trending(
        ctx: ServiceContext, path: dict[str, str], query: dict[str, str]
    ) -> bytes | None:
        kind = query.get("kind", default_kind)
        window = query.get("window", default_window)
        category = query.get("category", "")
        n = small_int(query.get("n"), limit.default, 1, limit.cap)
        if (
            kind not in kinds
            or window not in windows
            or n is None
            or (category and not valid_id(category))
            or set(query) - {"kind", "window", "category", "n"}
        ):
            return None
        return orjson.dumps(await answer(ctx, kind, window, category or None, n))

    return [FastRoute("/v1/trending", trending)]


def trending_router(settings: Settings) -> APIRouter:
    router = APIRouter()
    kinds = settings.trending_kinds
    windows = settings.trending_windows
    limit = trending_limit(settings)

    @router.get(
        "/v1/trending",
        response_model=TrendingResponse,
        responses=ERRORS,
        summary="Trending items",
        description=(
            "Items with the highest forward-decayed count of events of one kind, within a "
            "half-life window, optionally within one category. Items marked unavailable in "
            "the catalog are left out; items unknown to the catalog are kept. `score` is the "
            "decayed weighted event count at `generated_at` (epoch milliseconds). "
            f"{limit.sentence}"
        ),
    )
    async def trending(
        ctx: Context,
        kind: str = Query(
            next(iter(kinds)),
            description=f"Event kind, one of: {', '.join(kinds)}.",
            json_schema_extra={"enum": list(kinds)},
        ),
        window: str = Query(
            next(iter(windows)),
            description=f"Half-life window, one of: {', '.join(windows)}.",
            json_schema_extra={"enum": list(windows)},
        ),
        category: str = Query("", description="Category id; empty for all items."),
        n: int = limit.query(),
    ) -> Response:
        choice(kind, kinds, "kind")
        choice(window, windows, "window")
        chosen = check_id(category, "category") if category else None
        return OrjsonResponse(await answer(ctx, kind, window, chosen, limit.check(n)))

    return router
