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

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import redis.asyncio as aioredis
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, field_validator
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from pipeline.catalog import categories_of
from pipeline.events import InvalidEvent, _context, check_id
from pipeline.keys import Keys
from pipeline.ranking import RankingConfig, features, ranking_config
from pipeline.settings import Settings

MAX_RANK_ITEMS = 500
# Same bound as the reader's other routes: socket timeouts bound each round trip, this the
# whole request (redis-py retries a failed command several times).
DEADLINE_FACTOR = 2.0
SOURCE = {"model": "ranking"}
# OSError covers asyncio's TimeoutError from the deadline.
_REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError, TimeoutError, OSError)


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
        return _context(value)


class RankSource(BaseModel):
    model: str


class RankedItem(BaseModel):
    item_id: str
    score: float
    source: RankSource


class RankResponse(BaseModel):
    user_id: str
    items: list[RankedItem]


class RankError(BaseModel):
    error: str
    detail: str


def _json(content: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(content), status_code=status_code, media_type="application/json")


def ranking_router(settings: Settings) -> APIRouter:
    """``POST /v1/users/{user_id}/rank``; reads ``request.app.state.redis``.

    Body validation errors are ``RequestValidationError``: the reader app turns them into
    422 ``{"error": "invalid_parameter", "detail"}``; other apps answer FastAPI's default 422.
    """
    keys = Keys(settings.key_prefix)
    config = ranking_config(settings)
    deadline_s = settings.redis_timeout_s * DEADLINE_FACTOR
    router = APIRouter()

    @router.post(
        "/v1/users/{user_id}/rank",
        response_model=RankResponse,
        responses={422: {"model": RankError}, 503: {"model": RankError}},
        summary="Personalised ranking of a list of items",
        description=(
            "Orders the given items for the user by the click model learned from impressions "
            "and clicks (`score` = P(click), display-position bias factored out). Unknown items "
            "are ranked by the features they have. Best first; ties keep the input order."
        ),
    )
    async def rank(request: Request, user_id: str, body: RankRequest) -> Response:
        try:
            check_id(user_id, "user_id")
        except InvalidEvent as exc:
            return _json({"error": "invalid_parameter", "detail": str(exc)}, 422)
        try:
            async with asyncio.timeout(deadline_s):
                items = await rank_items(
                    request.app.state.redis, keys, user_id, body.items, body.context, config
                )
        except _REDIS_ERRORS as exc:
            reason = str(exc) or type(exc).__name__
            detail = f"Redis unavailable (deadline {deadline_s:g} s): {reason}"
            return _json({"error": "redis_unavailable", "detail": detail}, 503)
        return _json({"user_id": user_id, "items": items})

    return router
