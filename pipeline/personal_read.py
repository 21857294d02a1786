"""Reader side of the personal agent group: "for you" lists and related items.

``GET /v1/users/{user_id}/recommendations?n=``: the user's list as the personal agent last
computed it (within the batch of the user's latest event), minus items that became
unavailable; a user with no list yet gets trending items (``stage: "fallback"``).

``GET /v1/items/{item_id}/related?relation=&n=``: partners by co-occurrence with the
popularity discount applied now (``relation`` one of also_clicked, also_bought,
viewed_then_bought; empty blends all three).
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import redis.asyncio as aioredis
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from pipeline.events import InvalidEvent, check_id
from pipeline.http_common import (
    DEADLINE_FACTOR,
    ErrorBody,
    OrjsonResponse,
    member_id,
    redis_call,
    unavailable_items,
)
from pipeline.keys import Keys
from pipeline.related import DISCOUNT_BY, RELATIONS, blend_related, rank_related
from pipeline.settings import Settings
from pipeline.trending_read import read_trending

MAX_N = 500
_ERRORS: dict[int | str, dict[str, Any]] = {422: {"model": ErrorBody}, 503: {"model": ErrorBody}}


async def read_related(
    redis: aioredis.Redis,
    keys: Keys,
    item_id: str,
    relation: str | None,
    n: int,
    depth: int,
    discount: float,
) -> list[dict[str, Any]]:
    """Related items of ``item_id``, best first, as the engine's ``related`` ranks them."""
    relations = [relation] if relation else list(RELATIONS)
    async with redis.pipeline(transaction=False) as pipe:
        for name in relations:
            pipe.zrevrange(keys.related(name, item_id), 0, depth - 1, withscores=True)
        rows = await pipe.execute()
    counts = {
        name: [(pid, score) for member, score in members if (pid := member_id(member)) is not None]
        for name, members in zip(relations, rows, strict=True)
    }
    partners = sorted({pid for ranked in counts.values() for pid, _ in ranked})
    popularity: dict[str, dict[str, float]] = {}
    if partners:
        async with redis.pipeline(transaction=False) as pipe:
            for kind in ("click", "conversion"):
                pipe.hmget(keys.popularity(kind), partners)
            values = await pipe.execute()
        for kind, column in zip(("click", "conversion"), values, strict=True):
            popularity[kind] = {
                pid: float(v) for pid, v in zip(partners, column, strict=True) if v is not None
            }
    hidden = await unavailable_items(redis, keys, partners)
    exclude = hidden | {item_id}
    lists = {
        name: rank_related(
            counts[name], popularity.get(DISCOUNT_BY[name], {}), discount, depth, exclude
        )
        for name in relations
    }
    return [
        {
            "item_id": pid,
            "score": score,
            "source": {"model": "related", "relation": label, "source_items": [item_id]},
        }
        for pid, score, label in blend_related(lists, n)
    ]


async def read_foryou(
    redis: aioredis.Redis, keys: Keys, user_id: str, n: int
) -> list[dict[str, Any]] | None:
    """The stored list without unavailable items, or None when the user has none yet."""
    stored = await redis.get(keys.foryou(user_id))
    if stored is None:
        return None
    items = orjson.loads(stored)
    hidden = await unavailable_items(redis, keys, [item["item_id"] for item in items])
    return [item for item in items if item["item_id"] not in hidden][:n]


def personal_router(settings: Settings) -> APIRouter:
    router = APIRouter()
    keys = Keys(settings.key_prefix)
    deadline_s = settings.redis_timeout_s * DEADLINE_FACTOR
    fallback_kind = next(iter(settings.trending_kinds))
    fallback_window = next(iter(settings.trending_windows))

    @router.get(
        "/v1/users/{user_id}/recommendations",
        responses=_ERRORS,
        summary="For you",
        description=(
            "Personalised items for one user: online latent factors blended with neighbours of "
            "the user's recent history (trending for users with little history). Excludes "
            "items the user bought, consumed or blacklisted. Unknown users get trending items "
            "with `source.stage` = `fallback`."
        ),
    )
    async def recommendations(
        request: Request,
        user_id: str,
        n: int = Query(10, ge=1, le=MAX_N, description=f"Number of items, 1-{MAX_N}."),
    ) -> Response:
        check_id(user_id, "user_id")
        now_ms = int(time.time() * 1000)
        redis = request.app.state.redis
        async with redis_call(deadline_s):
            items = await read_foryou(redis, keys, user_id, n)
            if items is not None:
                # The list's stage: "personal", or "cold_start" for a user with little history.
                stage = items[0]["source"].get("stage", "personal") if items else "personal"
            else:
                stage = "fallback"
                items = await read_trending(
                    redis,
                    keys,
                    fallback_kind,
                    fallback_window,
                    settings.trending_windows[fallback_window],
                    None,
                    n,
                    now_ms,
                )
                for item in items:
                    item["source"] = {**item["source"], "stage": "fallback"}
        return OrjsonResponse(
            {"user_id": user_id, "stage": stage, "generated_at": now_ms, "items": items}
        )

    @router.get(
        "/v1/items/{item_id}/related",
        responses=_ERRORS,
        summary="Related items",
        description=(
            "Items that co-occur with this one in users' recent histories: `also_clicked`, "
            "`also_bought`, or `viewed_then_bought` (viewed this, then bought that). Counts are "
            "divided by `(popularity + 1) ** related_discount` so that merely popular items do "
            "not dominate. No `relation` blends the three."
        ),
    )
    async def related(
        request: Request,
        item_id: str,
        relation: str = Query("", description=f"One of {', '.join(RELATIONS)}; empty blends all."),
        n: int = Query(10, ge=1, le=MAX_N, description=f"Number of items, 1-{MAX_N}."),
    ) -> Response:
        check_id(item_id, "item_id")
        if relation and relation not in RELATIONS:
            raise InvalidEvent(f"unknown relation {relation!r}; allowed: {', '.join(RELATIONS)}")
        async with redis_call(deadline_s):
            items = await read_related(
                request.app.state.redis,
                keys,
                item_id,
                relation or None,
                n,
                max(n, settings.related_max_neighbours),
                settings.related_discount,
            )
        return OrjsonResponse({"item_id": item_id, "relation": relation or "blend", "items": items})

    return router
