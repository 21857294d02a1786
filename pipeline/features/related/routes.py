"""``GET /v1/items/{item_id}/related?relation=&n=``: items that co-occur with this one."""

from __future__ import annotations

from fastapi import APIRouter, Query
from fastapi.responses import Response

from pipeline.api.deps import Context, ItemCount
from pipeline.api.http import ERRORS, OrjsonResponse
from pipeline.core.ids import InvalidInput, check_id
from pipeline.core.settings import Settings
from pipeline.features.related.model import RELATIONS
from pipeline.features.related.read import read_related


def related_router(settings: Settings) -> APIRouter:
    router = APIRouter()
    depth = settings.related_max_neighbours
    discount = settings.related_discount

    @router.get(
        "/v1/items/{item_id}/related",
        responses=ERRORS,
        summary="Related items",
        description=(
            "Items that co-occur with this one in users' recent histories: `also_clicked`, "
            "`also_bought`, or `viewed_then_bought` (viewed this, then bought that). Counts are "
            "divided by `(popularity + 1) ** related_discount` so that merely popular items do "
            "not dominate. No `relation` blends the three."
        ),
    )
    async def related(
        ctx: Context,
        item_id: str,
        relation: str = Query("", description=f"One of {', '.join(RELATIONS)}; empty blends all."),
        n: ItemCount = 10,
    ) -> Response:
        check_id(item_id, "item_id")
        if relation and relation not in RELATIONS:
            raise InvalidInput(f"unknown relation {relation!r}; allowed: {', '.join(RELATIONS)}")
        async with ctx.bounded():
            items = await read_related(
                ctx.store, ctx.keys, item_id, relation or None, n, max(n, depth), discount
            )
        return OrjsonResponse({"item_id": item_id, "relation": relation or "blend", "items": items})

    return router
