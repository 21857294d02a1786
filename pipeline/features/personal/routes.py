"""``GET /v1/users/{user_id}/recommendations?n=``: the user's for-you list.

The list as the personal agent last computed it, minus items that became unavailable; a user
with no list yet gets trending items (``stage: "fallback"``). Served by the fast lane
(``pipeline.api.fast``) when well-formed, by FastAPI otherwise; both call :func:`answer`.
User ids may hold ``/`` (as is or ``%2F``). ``n`` is at most the stored list's length
(``foryou_size``): a larger one is a 422, never a silently shorter list.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from fastapi import APIRouter
from fastapi.responses import Response

from pipeline.api.deps import MAX_ITEMS, Context, ServiceContext
from pipeline.api.fast import FastRoute, small_int
from pipeline.api.http import ERRORS, OrjsonResponse
from pipeline.api.limits import CountLimit, count_limit
from pipeline.core.ids import check_id, valid_id
from pipeline.core.settings import Settings
from pipeline.features.personal.read import read_foryou
from pipeline.features.trending.read import read_trending

# {user_id:path}: user ids may hold "/".
PATH = "/v1/users/{user_id:path}/recommendations"
DEFAULT_N = 10


def foryou_limit(settings: Settings) -> CountLimit:
    """``n`` up to the stored list's length."""
    return count_limit(
        settings,
        "foryou_size",
        MAX_ITEMS,
        DEFAULT_N,
        "items",
        "each user's stored for-you list holds {cap} items",
    )


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
    limit = foryou_limit(settings)

    @router.get(
        PATH,
        responses=ERRORS,
        summary="For you",
        description=(
            "Personalised items for one user: online latent factors blended with neighbours of "
            "the user's recent history (trending for users with little history). Excludes "
            "items the user bought, consumed or blacklisted. Unknown users get trending items "
            f"with `source.stage` = `fallback`. {limit.sentence}"
        ),
    )
    async def recommendations(ctx: Context, user_id: str, n: int = limit.query()) -> Response:
        check_id(user_id, "user_id")
        return OrjsonResponse(await answer(ctx, user_id, limit.check(n)))

    return router


def fast_routes(settings: Settings) -> list[FastRoute]:
    limit = foryou_limit(settings)

    async def recommendations(
        ctx: ServiceContext, path: dict[str, str], query: dict[str, str]
    ) -> bytes | None:
        user_id = path["user_id"]
        n = small_int(query.get("n"), limit.default, 1, limit.cap)
        if not valid_id(user_id) or n is None or set(query) - {"n"}:
            return None
        return orjson.dumps(await answer(ctx, user_id, n))

    return [FastRoute(PATH, recommendations)]
