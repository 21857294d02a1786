"""Segment endpoints: users for an item, users for an attribute value.

Both answer ``{"item_id"}`` or ``{"attribute", "value"}`` with ``generated_at`` and
``"users": [{"user_id", "score", "source"}]``; 422 for a bad id or ``n`` outside 1-1000; 503
when Redis is down or slow.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Query
from fastapi.responses import Response

from pipeline.api.deps import Context, UserCount
from pipeline.api.http import ERRORS, OrjsonResponse
from pipeline.core.ids import check_id
from pipeline.core.settings import Settings
from pipeline.features.segments.config import segments_config
from pipeline.features.segments.model import CATEGORY
from pipeline.features.segments.read import users_for_attribute, users_for_item

DEFAULT_USERS = 100


def segments_router(settings: Settings) -> APIRouter:
    router = APIRouter()
    config = segments_config(settings)

    @router.get(
        "/v1/items/{item_id}/segment",
        responses=ERRORS,
        summary="Users for an item",
        description=(
            "Users most likely to interact with this item (Item-Affinity): their own "
            "forward-decayed affinity for the item (weight 1) blended with their affinity "
            "for the item's categories and attributes (weight 0.5), each list scaled to its "
            "top user. Users who blacklisted the item are left out. `score` is the blend "
            "(0-1.5); `source` gives the decayed affinities it came from."
        ),
    )
    async def item_users(ctx: Context, item_id: str, n: UserCount = DEFAULT_USERS) -> Response:
        check_id(item_id, "item_id")
        now_ms = int(time.time() * 1000)
        async with ctx.bounded():
            users = await users_for_item(ctx.store, ctx.keys, item_id, n, now_ms, config)
        return OrjsonResponse({"item_id": item_id, "generated_at": now_ms, "users": users})

    @router.get(
        "/v1/segments",
        responses=ERRORS,
        summary="Users for an attribute value",
        description=(
            "Users with the highest forward-decayed affinity for one attribute value "
            "(Item-Attribute-Affinity), from their positive events on items carrying it. "
            f"`attribute={CATEGORY}` means catalog categories. `score` is the decayed "
            "weighted event count."
        ),
    )
    async def attribute_users(
        ctx: Context,
        attribute: str = Query(..., description=f"Attribute name; `{CATEGORY}` for categories."),
        value: str = Query(..., description="Attribute value (numbers as text, e.g. 42)."),
        n: UserCount = DEFAULT_USERS,
    ) -> Response:
        check_id(attribute, "attribute")
        check_id(value, "value")
        now_ms = int(time.time() * 1000)
        async with ctx.bounded():
            users = await users_for_attribute(
                ctx.store, ctx.keys, attribute, value, n, now_ms, config
            )
        body = {"attribute": attribute, "value": value, "generated_at": now_ms}
        return OrjsonResponse({**body, "users": users})

    return router
