"""``GET /v1/users/{user_id}/recommendations?n=``: the user's for-you list.

The list as the personal agent last computed it (within the batch of the user's latest
event), minus items that became unavailable; a user with no list yet gets trending items
(``stage: "fallback"``).
"""

from __future__ import annotations

import time

from fastapi import APIRouter
from fastapi.responses import Response

from pipeline.api.deps import Context, ItemCount
from pipeline.api.http import ERRORS, OrjsonResponse
from pipeline.core.ids import check_id
from pipeline.core.settings import Settings
from pipeline.features.personal.read import read_foryou
from pipeline.features.trending.read import read_trending


def personal_router(settings: Settings) -> APIRouter:
    router = APIRouter()
    fallback_kind = next(iter(settings.trending_kinds))
    fallback_window = next(iter(settings.trending_windows))
    fallback_half_life = settings.trending_windows[fallback_window]

    @router.get(
        "/v1/users/{user_id}/recommendations",
        responses=ERRORS,
        summary="For you",
        description=(
            "Personalised items for one user: online latent factors blended with neighbours of "
            "the user's recent history (trending for users with little history). Excludes "
            "items the user bought, consumed or blacklisted. Unknown users get trending items "
            "with `source.stage` = `fallback`."
        ),
    )
    async def recommendations(ctx: Context, user_id: str, n: ItemCount = 10) -> Response:
        check_id(user_id, "user_id")
        now_ms = int(time.time() * 1000)
        async with ctx.bounded():
            items = await read_foryou(ctx.store, ctx.keys, user_id, n)
            if items is not None:
                # The list's stage: "personal", or "cold_start" for a user with little history.
                stage = items[0]["source"].get("stage", "personal") if items else "personal"
            else:
                stage = "fallback"
                items = await read_trending(
                    ctx.store,
                    ctx.keys,
                    fallback_kind,
                    fallback_window,
                    fallback_half_life,
                    None,
                    n,
                    now_ms,
                )
                for item in items:
                    item["source"] = {**item["source"], "stage": "fallback"}
        return OrjsonResponse(
            {"user_id": user_id, "stage": stage, "generated_at": now_ms, "items": items}
        )

    return router
