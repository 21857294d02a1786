"""``GET /v1/trending``: forward-decayed trending items, best first.

200 ``{"kind", "window", "category", "generated_at", "items": [{"item_id", "score", "source":
{"model": "trending", "kind", "window", "category"}}]}``; 422 for a bad parameter (the detail
names the allowed values); 503 when Redis is down or slow.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel

from pipeline.api.deps import Context, ItemCount
from pipeline.api.http import ERRORS, OrjsonResponse
from pipeline.core.ids import InvalidInput, check_id
from pipeline.core.settings import Settings
from pipeline.features.trending.read import read_trending


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


def trending_router(settings: Settings) -> APIRouter:
    router = APIRouter()
    kinds = settings.trending_kinds
    windows = settings.trending_windows

    @router.get(
        "/v1/trending",
        response_model=TrendingResponse,
        responses=ERRORS,
        summary="Trending items",
        description=(
            "Items with the highest forward-decayed count of events of one kind, within a "
            "half-life window, optionally within one category. Items marked unavailable in "
            "the catalog are left out; items unknown to the catalog are kept. `score` is the "
            "decayed weighted event count at `generated_at` (epoch milliseconds)."
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
        n: ItemCount = 10,
    ) -> Response:
        choice(kind, kinds, "kind")
        choice(window, windows, "window")
        chosen = check_id(category, "category") if category else None
        now_ms = int(time.time() * 1000)
        async with ctx.bounded():
            items = await read_trending(
                ctx.store, ctx.keys, kind, window, windows[window], chosen, n, now_ms
            )
        body = {"kind": kind, "window": window, "category": chosen, "generated_at": now_ms}
        return OrjsonResponse({**body, "items": items})

    return router
