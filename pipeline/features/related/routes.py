"""``GET /v1/items/{item_id}/related?relation=&n=``: items that co-occur with this one.

Item ids may hold ``/`` (as is or ``%2F``). ``n`` is at most the partners stored per item and
relation (``related_max_neighbours``): a larger one is a 422, never a silently shorter list.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Query
from fastapi.responses import Response

from pipeline.api.deps import MAX_ITEMS, Context, ServiceContext
from pipeline.api.fast import FastRoute, small_int
from pipeline.api.http import ERRORS, OrjsonResponse
from pipeline.api.limits import CountLimit, count_limit
from pipeline.core.ids import InvalidInput, check_id, valid_id
from pipeline.core.settings import Settings
from pipeline.features.content.read import SIMILAR_CONTENT
from pipeline.features.related.model import RELATIONS
from pipeline.features.related.read import read_related

# {item_id:path}: item ids may hold "/".
PATH = "/v1/items/{item_id:path}/related"
DEFAULT_N = 10
# Relations a request may name: the learned ones, and items similar by text (content feature).
ALLOWED = (*RELATIONS, SIMILAR_CONTENT)


def related_limit(settings: Settings) -> CountLimit:
    """``n`` up to the partners stored per item and relation."""
    return count_limit(
        settings,
        "related_max_neighbours",
        MAX_ITEMS,
        DEFAULT_N,
        "items",
        "{cap} related items are stored per item and relation",
    )


def content_limit(settings: Settings) -> CountLimit:
    """``n`` of ``similar_content``: up to the content neighbours stored per item."""
    return count_limit(
        settings,
        "content_neighbours",
        MAX_ITEMS,
        DEFAULT_N,
        "items",
        "{cap} similar items are stored per item",
    )


async def answer(ctx: ServiceContext, item_id: str, relation: str | None, n: int) -> dict[str, Any]:
    """The response body for valid parameters."""
    settings = ctx.settings
    # Every stored partner is read: the discount reorders them (n never exceeds this).
    depth = settings.related_max_neighbours
    async with ctx.bounded():
        items = await read_related(
            ctx.store,
            ctx.keys,
            ctx.availability,
            item_id,
            relation,
            n,
            depth,
            settings.related_discount,
            ctx.related_lists,
        )
    return {"item_id": item_id, "relation": relation or "blend", "items": items}


def fast_routes(settings: Settings) -> list[FastRoute]:
    limit = related_limit(settings)
    similar = content_limit(settings)

    async def related(
        ctx: ServiceContext, path: dict[str, str], query: dict[str, str]
    ) -> bytes | None:
        item_id = path["item_id"]
        relation = query.get("relation", "")
        cap = similar.cap if relation == SIMILAR_CONTENT else limit.cap
        n = small_int(query.get("n"), min(limit.default, cap), 1, cap)
        if (
            not valid_id(item_id)
            or n is None
            or (relation and relation not in ALLOWED)
            or set(query) - {"relation", "n"}
        ):
            return None
        return orjson.dumps(await answer(ctx, item_id, relation or None, n))

    return [FastRoute(PATH, related)]


def related_router(settings: Settings) -> APIRouter:
    router = APIRouter()
    limit = related_limit(settings)
    similar = content_limit(settings)

    @router.get(
        PATH,
        responses=ERRORS,
        summary="Related items",
        description=(
            "Items that co-occur with this one in users' recent histories: `also_clicked`, "
            "`also_bought`, or `viewed_then_bought` (viewed this, then bought that). Counts are "
            "divided by `(popularity + 1) ** related_discount` so that merely popular items do "
            "not dominate. No `relation` blends the three, filled up with content neighbours "
            f"(marked `model: content`) when they give fewer than `n`. {limit.sentence} "
            "`similar_content`: items whose text (title, description) is most like this "
            "one's, scored by cosine similarity, listed before anyone interacted with them; "
            f"for it, {similar.sentence}"
        ),
    )
    async def related(
        ctx: Context,
        item_id: str,
        relation: str = Query(
            "", description=f"One of {', '.join(ALLOWED)}; empty blends the learned three."
        ),
        n: int = limit.query(),
    ) -> Response:
        check_id(item_id, "item_id")
        if relation and relation not in ALLOWED:
            raise InvalidInput(f"unknown relation {relation!r}; allowed: {', '.join(ALLOWED)}")
        n = (similar if relation == SIMILAR_CONTENT else limit).check(n)
        return OrjsonResponse(await answer(ctx, item_id, relation or None, n))

    return router
