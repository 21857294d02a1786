"""``POST /v1/users/{user_id}/rank``: order a caller's list of items for one user.

Body ``{"items": [item ids, 1-500], "context": {...}}``; answer ``{"user_id", "items":
[{"item_id", "score", "source": {"model": "ranking"}}]}``, best first. ``score`` is the click
model's P(click) without the position feature, so display-position bias is factored out.
User ids may hold ``/`` (as is or ``%2F``).
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, Field, field_validator

from pipeline.api.deps import MAX_ITEMS, Context
from pipeline.api.http import ERRORS, OrjsonResponse
from pipeline.core.events import check_context
from pipeline.core.ids import check_id
from pipeline.core.settings import Settings
from pipeline.features.personal.read import alias_target
from pipeline.features.ranking.config import ranking_config
from pipeline.features.ranking.read import rank_items


class RankRequest(BaseModel):
    """Body of ``POST /v1/users/{user_id}/rank``."""

    items: list[str] = Field(
        min_length=1,
        max_length=MAX_ITEMS,
        description=f"Item ids to rank, 1-{MAX_ITEMS}, e.g. what a page is about to show.",
    )
    context: dict[str, Any] = Field(
        default_factory=dict,
        description="Request context as in events: string -> string or number "
        "(device, page, locale). At most 32 entries.",
    )

    @field_validator("items")
    @classmethod
    def _ids(cls, value: list[str]) -> list[str]:
        return [check_id(item_id, "items[]") for item_id in value]

    @field_validator("context")
    @classmethod
    def _context_rules(cls, value: dict[str, Any]) -> dict[str, Any]:
        return check_context(value)


class RankSource(BaseModel):
    model: str


class RankedItem(BaseModel):
    item_id: str
    score: float
    source: RankSource


class RankResponse(BaseModel):
    user_id: str
    items: list[RankedItem]


def ranking_router(settings: Settings) -> APIRouter:
    config = ranking_config(settings)
    router = APIRouter()

    @router.post(
        # {user_id:path}: user ids may hold "/".
        "/v1/users/{user_id:path}/rank",
        response_model=RankResponse,
        responses=ERRORS,
        summary="Personalised ranking of a list of items",
        description=(
            "Orders the given items for the user by the click model learned from impressions "
            "and clicks (`score` = P(click), display-position bias factored out). Unknown items "
            "are ranked by the features they have. Best first; ties keep the input order."
        ),
    )
    async def rank(ctx: Context, user_id: str, body: RankRequest) -> Response:
        check_id(user_id, "user_id")
        async with ctx.bounded():
            # An anonymous id that logged in is ranked as the user it became.
            owner = alias_target(await ctx.store.get(ctx.keys.user_alias(user_id))) or user_id
            items = await rank_items(
                ctx.store,
                ctx.keys,
                owner,
                body.items,
                body.context,
                config,
                int(time.time() * 1000),
            )
        return OrjsonResponse({"user_id": user_id, "items": items})

    return router
