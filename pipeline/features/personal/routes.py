"""``GET /v1/users/{user_id}/recommendations?n=``: the user's for-you list.

The list as the personal agent last computed it, minus items that became unavailable; a user
with no list yet gets trending items (``stage: "fallback"``). Served by the fast lane
(``pipeline.api.fast``) when well-formed, by FastAPI otherwise; both call :func:`answer`.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from fastapi import APIRouter
from fastapi.responses import Response

from pipeline.api.deps import MAX_ITEMS, Context, ItemCount, ServiceContext
from pipeline.api.fast import FastRoute, small_int
from pipeline.api.http import ERRORS, OrjsonResponse
from pipeline.core.ids import check_id, valid_id
from pipeline.core.settings import Settings
from pipeline.features.personal.read import read_foryou
from pipeline.features.trending.read import read_trending

PATH = "/v1/users/{user_id}/recommendations"
DEFAULT_N = 10


async def answer(ctx: ServiceContext, user_id: str, n: int) -> dict[str, Any]:
    """The response body for a valid user id and ``n``."""
    settings = ctx.settings
    now_ms = int(time.time() * 1000)
    async with ctx.bounded():
        items = await read_foryou(ctx.store, ctx.keys, ctx.availability, user_id, n)
        if items is not None:
            # The list's stage: "personal", or "cold_start" for a user with little history.
            stage = items[0]["source"].get("stage", "personal") if items else "personal"
        else:
            stage = "fallback"
            kind = next(iter(settings.trending_kinds))
            window = next(iter(settings.trending_windows))
            half_life = settings.trending_windows[window]
            items = await read_trending(
                ctx.store, ctx.keys, ctx.availability, kind, window, half_life, None, n, now_ms
            )
            for item in items:
                item["source"] = {**item["source"], "stage": "fallback"}
    return {"user_id": user_id, "stage": stage, "generated_at": now_ms, "items": items}


def personal_router(settings: Settings) -> APIRouter:
    router = APIRouter()

    @router.get(
        PATH,
        responses=ERRORS,
        summary="For you",
        description=(
            "Personalised items for one user: online latent factors blended with neighbours of "
            "the user's recent history (trending for users with little history). Excludes "
            "items the user bought, consumed or blacklisted. Unknown users get trending items "
            "with `source.stage` = `fallback`."
        ),
    )
    async def recommendations(ctx: Context, user_id: str, n: ItemCount = DEFAULT_N) -> Response:
        check_id(user_id, "user_id")
        return OrjsonResponse(await answer(ctx, user_id, n))

    return router


def fast_routes(settings: Settings) -> list[FastRoute]:
    async def recommendations(
        ctx: ServiceContext, path: dict[str, str], query: dict[str, str]
    ) -> bytes | None:
        user_id = path["user_id"]
        n = small_int(query.get("n"), DEFAULT_N, 1, MAX_ITEMS)
        if not valid_id(user_id) or n is None or set(query) - {"n"}:
            return None
        return orjson.dumps(await answer(ctx, user_id, n))

    return [FastRoute(PATH, recommendations)]
