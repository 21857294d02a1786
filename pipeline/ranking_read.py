"""Reader side of personalised ranking: order a caller's list of items for one user.

``POST /v1/users/{user_id}/rank`` with ``{"items": [item ids, 1-500], "context": {...}}``
answers ``{"user_id", "items": [{"item_id", "score", "source": {"model": "ranking"}}]}``, best
first. ``score`` is the click model's P(click) without the position feature (ranking.py), so
display-position bias is factored out. Items the model has never seen are still ranked, by
the features they do have (bias, context, categories). A repeated id is ranked once.

Bad input answers 422 ``{"error": "invalid_parameter", "detail"}`` (user and item ids follow
``pipeline.events.check_id``, the context follows the event contract); Redis trouble answers
503 ``{"error": "redis_unavailable", "detail"}`` within ``2 * settings.redis_timeout_s``.

Reads two round trips: the catalog categories of the items, then one HMGET of every weight
the items' features need from ``{p}:rank:weights``. Imports no agent code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import redis.asyncio as aioredis
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, field_validator

from pipeline.catalog import categories_of
from pipeline.events import check_context, check_id
from pipeline.http_common import DEADLINE_FACTOR, ErrorBody, OrjsonResponse, redis_call
from pipeline.keys import Keys
from pipeline.ranking import RankingConfig, features, ranking_config
from pipeline.settings import Settings

MAX_RANK_ITEMS = 500
SOURCE = {"model": "ranking"}


async def rank_items(
    redis: aioredis.Redis,
    keys: Keys,
    user_id: str,
    item_ids: Sequence[str],
    context: Mapping[str, Any] | None = None,
    config: RankingConfig | None = None,
) -> list[dict[str, Any]]:
    """``item_ids`` ordered by the click model for ``user_id`` in ``context``.

    Returns ``[{"item_id", "score", "source": {"model": "ranking"}}]``, score descending,
    ties in input order; a repeated id keeps its first place only. ``config`` must match
    the agent's (same ``n_bits`` and ``seed``); the default is ``RankingConfig()``.
    """
    unique = list(dict.fromkeys(item_ids))
    if not unique:
        return []
    context = context or {}
    model = (config or RankingConfig()).model()
    categories = await categories_of(redis, keys, unique)
    per_item = [
        model.indexes(features(user_id, item_id, categories.get(item_id, ()), context, None))
        for item_id in unique
    ]
    touched = sorted({index for indexes in per_item for index in indexes})
    stored = await redis.hmget(keys.rank_weights(), touched)
    model.set_weights(
        {
            index: float(value)
            for index, value in zip(touched, stored, strict=True)
            if value is not None
        }
    )
    scored = [
        (item_id, model.proba_indexes(indexes))
        for item_id, indexes in zip(unique, per_item, strict=True)
    ]
    # sorted() is stable: equal scores keep the input order.
    scored.sort(key=lambda pair: -pair[1])
    return [{"item_id": item_id, "score": score, "source": SOURCE} for item_id, score in scored]


class RankRequest(BaseModel):
    """Body of ``POST /v1/users/{user_id}/rank``."""

    items: list[str] = Field(
        min_length=1,
        max_length=MAX_RANK_ITEMS,
        description=f"Item ids to rank, 1-{MAX_RANK_ITEMS}, e.g. what a page is about to show.",
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
    """``POST /v1/users/{user_id}/rank``; reads ``request.app.state.redis``.

    Errors (bad ids or body: 422, Redis: 503) are raised and mapped by the app's handlers
    (:func:`pipeline.http_common.install_error_handlers`).
    """
    keys = Keys(settings.key_prefix)
    config = ranking_config(settings)
    deadline_s = settings.redis_timeout_s * DEADLINE_FACTOR
    router = APIRouter()

    @router.post(
        "/v1/users/{user_id}/rank",
        response_model=RankResponse,
        responses={422: {"model": ErrorBody}, 503: {"model": ErrorBody}},
        summary="Personalised ranking of a list of items",
        description=(
            "Orders the given items for the user by the click model learned from impressions "
            "and clicks (`score` = P(click), display-position bias factored out). Unknown items "
            "are ranked by the features they have. Best first; ties keep the input order."
        ),
    )
    async def rank(request: Request, user_id: str, body: RankRequest) -> Response:
        check_id(user_id, "user_id")
        async with redis_call(deadline_s):
            items = await rank_items(
                request.app.state.redis, keys, user_id, body.items, body.context, config
            )
        return OrjsonResponse({"user_id": user_id, "items": items})

    return router
