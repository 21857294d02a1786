"""Reader side of the segments agent group: users for an item, users for an attribute value.

``GET /v1/items/{item_id}/segment?n=``: users most likely to interact with the item, best
first: the item's own affinity blended with the affinities of its catalog categories and
attributes (``segments.rank_item_segment``), so users who never saw the item appear too.
Users who blacklisted the item never appear.

``GET /v1/segments?attribute=&value=&n=``: users with the highest affinity for one attribute
value (``attribute=category`` means catalog categories).

Both answer ``{"item_id"}`` or ``{"attribute", "value"}`` with ``generated_at`` and
``"users": [{"user_id", "score", "source"}]``; 422 ``{"error": "invalid_parameter",
"detail"}`` for a bad id or ``n`` outside 1-1000; 503 ``{"error": "redis_unavailable",
"detail"}`` when Redis is down or slow.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from pipeline.events import check_id, valid_id
from pipeline.http_common import (
    DEADLINE_FACTOR,
    ErrorBody,
    OrjsonResponse,
    redis_call,
)
from pipeline.keys import Keys
from pipeline.segments import (
    CATEGORY,
    DEFAULT_HALF_LIFE_S,
    MAX_ATTRIBUTE_SEGMENTS,
    Segment,
    attribute_segments,
    decayed,
    generation,
    item_segment,
    parse_catalog_fields,
    rank_item_segment,
    segment_key,
    segments_config,
)
from pipeline.settings import Settings

MAX_N = 1000
DEFAULT_N = 100
# Exclusion markers read per item: users who blacklisted it.
MAX_EXCLUDED = 10_000
_ERRORS: dict[int | str, dict[str, Any]] = {422: {"model": ErrorBody}, 503: {"model": ErrorBody}}

Features = tuple[list[Any], dict[str, Any]]


async def item_features(
    redis: aioredis.Redis, keys: Keys, item_ids: Sequence[str]
) -> dict[str, Features]:
    """Catalog categories and attributes of each item, in one pipelined round trip.

    Items missing from the catalog have neither.
    """
    if not item_ids:
        return {}
    async with redis.pipeline(transaction=False) as pipe:
        for item_id in item_ids:
            pipe.hmget(keys.item(item_id), ["categories", "attributes"])
        rows = await pipe.execute()
    return {
        item_id: parse_catalog_fields(categories, attributes)
        for item_id, (categories, attributes) in zip(item_ids, rows, strict=True)
    }


def _candidate_depth(n: int) -> int:
    """Users read from each list for the blend: more than ``n``, as a user ranked below
    ``n`` in every single list may still make the blended top ``n``."""
    return 2 * n + 20


def _users(rows: Sequence[tuple[bytes, float]], factor: float) -> list[tuple[str, float]]:
    """Sorted-set rows to (user_id, decayed affinity); members that break the id contract
    are never served."""
    out = []
    for member, stored in rows:
        user = member.decode("utf-8", "replace")
        if valid_id(user):
            out.append((user, stored * factor))
    return out


async def users_for_item(
    redis: aioredis.Redis,
    keys: Keys,
    item_id: str,
    n: int,
    now_ms: int,
    *,
    half_life_s: float = DEFAULT_HALF_LIFE_S,
    max_attribute_segments: int = MAX_ATTRIBUTE_SEGMENTS,
) -> list[dict[str, Any]]:
    """Users for an item, best first, in two pipelined round trips.

    First the catalog fields, the item's own segment and its exclusion markers; then one
    ZREVRANGEBYSCORE per category/attribute segment of the item. ``score`` is the blend of
    ``rank_item_segment`` (0-1.5); ``source.direct`` and ``source.attributes[].affinity``
    are the decayed affinities at ``now_ms`` it was built from.
    """
    gen = generation(now_ms, half_life_s)
    factor = decayed(1.0, gen, half_life_s, now_ms)
    depth = _candidate_depth(n)
    own = segment_key(keys, item_segment(item_id), gen)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hmget(keys.item(item_id), ["categories", "attributes"])
        pipe.zrevrangebyscore(own, "+inf", "(0", start=0, num=depth, withscores=True)
        pipe.zrangebyscore(own, "-inf", "-inf", start=0, num=MAX_EXCLUDED)
        (categories, attributes), own_rows, marker_rows = await pipe.execute()
    segments = attribute_segments(
        *parse_catalog_fields(categories, attributes), max_attribute_segments
    )
    attribute_rows: list[Any] = []
    if segments:
        async with redis.pipeline(transaction=False) as pipe:
            for segment in segments:
                key = segment_key(keys, segment, gen)
                pipe.zrevrangebyscore(key, "+inf", "(0", start=0, num=depth, withscores=True)
            attribute_rows = await pipe.execute()

    excluded = {member.decode("utf-8", "replace") for member in marker_rows}
    direct = _users(own_rows, factor)
    by_attribute = [_users(rows, factor) for rows in attribute_rows]
    direct_of = dict(direct)
    attribute_of = [dict(rows) for rows in by_attribute]
    users = []
    for user, score in rank_item_segment(direct, by_attribute, n, exclude=excluded):
        via = [
            {"attribute": segment.attribute, "value": segment.value, "affinity": affinities[user]}
            for segment, affinities in zip(segments, attribute_of, strict=True)
            if user in affinities
        ]
        source = {
            "model": "segments",
            "item_id": item_id,
            "direct": direct_of.get(user, 0.0),
            "attributes": via,
        }
        users.append({"user_id": user, "score": score, "source": source})
    return users


async def users_for_attribute(
    redis: aioredis.Redis,
    keys: Keys,
    attribute: str,
    value: str,
    n: int,
    now_ms: int,
    *,
    half_life_s: float = DEFAULT_HALF_LIFE_S,
) -> list[dict[str, Any]]:
    """The ``n`` users with the highest affinity for one attribute value (``category``:
    catalog categories); ``score`` is the decayed affinity at ``now_ms``."""
    gen = generation(now_ms, half_life_s)
    key = segment_key(keys, Segment(attribute, value), gen)
    rows = await redis.zrevrangebyscore(key, "+inf", "(0", start=0, num=n, withscores=True)
    source = {"model": "segments", "attribute": attribute, "value": value}
    factor = decayed(1.0, gen, half_life_s, now_ms)
    return [
        {"user_id": user, "score": score, "source": source} for user, score in _users(rows, factor)
    ]


def segments_router(settings: Settings) -> APIRouter:
    """The two segment endpoints; the app must set ``app.state.redis`` (the reader does).

    Errors are answered here, not by app-wide handlers, so the router works in any app.
    """
    router = APIRouter()
    keys = Keys(settings.key_prefix)
    config = segments_config(settings)
    deadline_s = settings.redis_timeout_s * DEADLINE_FACTOR
    n_query = Query(DEFAULT_N, ge=1, le=MAX_N, description=f"Number of users, 1-{MAX_N}.")

    @router.get(
        "/v1/items/{item_id}/segment",
        responses=_ERRORS,
        summary="Users for an item",
        description=(
            "Users most likely to interact with this item (Item-Affinity): their own "
            "forward-decayed affinity for the item (weight 1) blended with their affinity "
            "for the item's categories and attributes (weight 0.5), each list scaled to its "
            "top user. Users who blacklisted the item are left out. `score` is the blend "
            "(0-1.5); `source` gives the decayed affinities it came from."
        ),
    )
    async def item_users(request: Request, item_id: str, n: int = n_query) -> Response:
        check_id(item_id, "item_id")
        now_ms = int(time.time() * 1000)
        async with redis_call(deadline_s):
            users = await users_for_item(
                request.app.state.redis,
                keys,
                item_id,
                n,
                now_ms,
                half_life_s=config.half_life_s,
                max_attribute_segments=config.max_attribute_segments,
            )
        return OrjsonResponse({"item_id": item_id, "generated_at": now_ms, "users": users})

    @router.get(
        "/v1/segments",
        responses=_ERRORS,
        summary="Users for an attribute value",
        description=(
            "Users with the highest forward-decayed affinity for one attribute value "
            "(Item-Attribute-Affinity), from their positive events on items carrying it. "
            f"`attribute={CATEGORY}` means catalog categories. `score` is the decayed "
            "weighted event count."
        ),
    )
    async def attribute_users(
        request: Request,
        attribute: str = Query(..., description=f"Attribute name; `{CATEGORY}` for categories."),
        value: str = Query(..., description="Attribute value (numbers as text, e.g. 42)."),
        n: int = n_query,
    ) -> Response:
        check_id(attribute, "attribute")
        check_id(value, "value")
        now_ms = int(time.time() * 1000)
        async with redis_call(deadline_s):
            users = await users_for_attribute(
                request.app.state.redis,
                keys,
                attribute,
                value,
                n,
                now_ms,
                half_life_s=config.half_life_s,
            )
        body = {"attribute": attribute, "value": value, "generated_at": now_ms}
        return OrjsonResponse({**body, "users": users})

    return router
