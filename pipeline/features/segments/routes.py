"""Segment endpoints: users for an item, users for an attribute value.

Both answer ``{"item_id"}`` or ``{"attribute", "value"}`` with ``recommendation_id`` (naming
the campaign), ``generated_at`` and ``"users": [{"user_id", "score", "source"}]``; 422 for a bad id or an ``n`` outside 1 to
the users kept per segment (``segments_max_users``, at most 1000); 503 when Redis is down or
slow. Item ids may hold ``/`` (as is or ``%2F``).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from pipeline.api.deps import MAX_USERS, Context
from pipeline.api.http import ERRORS, OrjsonResponse
from pipeline.api.limits import CountLimit, count_limit
from pipeline.core.ids import check_id
from pipeline.core.settings import Settings
from pipeline.features.segments.config import segments_config
from pipeline.features.segments.model import CATEGORY
from pipeline.features.segments.read import (
    campaign_audience,
    parse_user_attributes,
    users_for_attribute,
    users_for_item,
    with_user_attributes,
)

DEFAULT_USERS = 100
ACTIVE_DAYS: Any = Query(
    None, gt=0, le=3650, description="Only users with an interaction in the last N days."
)
USER_ATTRIBUTE: Any = Query(
    [],
    description="`name:value` (repeatable): only users whose record (`POST /v1/users`) has "
    "that attribute value (or, for a list, contains it); numbers and booleans as text.",
)
CAMPAIGN: Any = Query(
    "email",
    pattern=r"^[A-Za-z0-9_-]{1,64}$",
    description="Name the campaign: the answer's `recommendation_id` carries it, and "
    "conversions sent back with that id count in `GET /v1/scenarios/{name}/stats`.",
)


def campaign_id(name: str) -> str:
    """``{name}:{16 hex}:segment``: a recommendation id the attribution agent credits."""
    return f"{name}:{secrets.token_hex(8)}:segment"


def users_limit(settings: Settings) -> CountLimit:
    """``n`` up to the users kept per segment."""
    return count_limit(
        settings,
        "segments_max_users",
        MAX_USERS,
        DEFAULT_USERS,
        "users",
        "each segment keeps its {cap} users of highest affinity",
    )


@dataclass(frozen=True, slots=True)
class Audience:
    """What both segment endpoints make of their campaign parameters."""

    recommendation_id: str
    now_ms: int
    active_since_ms: int | None
    conditions: list[tuple[str, str]]
    # Candidates read before the filters narrow them to ``n``.
    depth: int


def audience(
    limit: CountLimit,
    n: int,
    scenario: str,
    active_days: float | None,
    user_attribute: list[str],
    other_filter: bool = False,
) -> Audience:
    """Check ``n`` and the campaign parameters (4xx on a bad one)."""
    limit.check(n)
    conditions = parse_user_attributes(user_attribute)
    now_ms = int(time.time() * 1000)
    since = None if active_days is None else now_ms - int(active_days * 86_400_000)
    filtered = other_filter or since is not None or bool(conditions)
    depth = min(limit.cap, 3 * n + 20) if filtered else n
    return Audience(campaign_id(scenario), now_ms, since, conditions, depth)


def segments_router(settings: Settings) -> APIRouter:
    router = APIRouter()
    config = segments_config(settings)
    limit = users_limit(settings)

    @router.get(
        # {item_id:path}: item ids may hold "/".
        "/v1/items/{item_id:path}/segment",
        responses=ERRORS,
        summary="Users for an item",
        description=(
            "Users most likely to interact with this item (Item-Affinity): their own "
            "forward-decayed affinity for the item (weight 1) blended with their affinity "
            "for the item's categories and attributes (weight 0.5), each list scaled to its "
            "top user. Users who blacklisted the item are left out. `score` is the blend "
            "(0-1.5); `source` gives the decayed affinities it came from. For a campaign: "
            "`exclude_converted`, `active_days`, `user_attribute=name:value` (users whose "
            "record has that value), and `scenario` (the campaign's name, carried "
            "by the answer's `recommendation_id`, so conversions sent back with it are "
            f"counted). {limit.sentence}"
        ),
    )
    async def item_users(
        ctx: Context,
        item_id: str,
        n: int = limit.query(),
        exclude_converted: bool = Query(
            False, description="Leave out users who already bought, consumed or rated the item."
        ),
        active_days: float | None = ACTIVE_DAYS,
        scenario: str = CAMPAIGN,
        user_attribute: list[str] = USER_ATTRIBUTE,
    ) -> Response:
        check_id(item_id, "item_id")
        a = audience(limit, n, scenario, active_days, user_attribute, exclude_converted)
        async with ctx.bounded():
            users = await users_for_item(ctx.store, ctx.keys, item_id, a.depth, a.now_ms, config)
            users = await with_user_attributes(ctx.store, ctx.keys, users, a.conditions, a.depth)
            converted = item_id if exclude_converted else None
            users = await campaign_audience(
                ctx.store, ctx.keys, users, n, converted, a.active_since_ms
            )
        body = {"item_id": item_id, "recommendation_id": a.recommendation_id}
        return OrjsonResponse({**body, "generated_at": a.now_ms, "users": users})

    @router.get(
        "/v1/segments",
        responses=ERRORS,
        summary="Users for an attribute value",
        description=(
            "Users with the highest forward-decayed affinity for one attribute value "
            "(Item-Attribute-Affinity), from their positive events on items carrying it. "
            f"`attribute={CATEGORY}` means catalog categories. `score` is the decayed "
            "weighted event count. `active_days` keeps only recently active users; "
            "`scenario` names the campaign in `recommendation_id`; `user_attribute=name:value` "
            f"keeps users whose record has that attribute value. {limit.sentence}"
        ),
    )
    async def attribute_users(
        ctx: Context,
        attribute: str = Query(..., description=f"Attribute name; `{CATEGORY}` for categories."),
        value: str = Query(..., description="Attribute value (numbers as text, e.g. 42)."),
        n: int = limit.query(),
        active_days: float | None = ACTIVE_DAYS,
        scenario: str = CAMPAIGN,
        user_attribute: list[str] = USER_ATTRIBUTE,
    ) -> Response:
        check_id(attribute, "attribute")
        check_id(value, "value")
        a = audience(limit, n, scenario, active_days, user_attribute)
        async with ctx.bounded():
            users = await users_for_attribute(
                ctx.store, ctx.keys, attribute, value, a.depth, a.now_ms, config
            )
            users = await with_user_attributes(ctx.store, ctx.keys, users, a.conditions, a.depth)
            users = await campaign_audience(ctx.store, ctx.keys, users, n, None, a.active_since_ms)
        body = {"attribute": attribute, "value": value, "recommendation_id": a.recommendation_id}
        return OrjsonResponse({**body, "generated_at": a.now_ms, "users": users})

    return router
