"""``GET /v1/users/{user_id}/recommendations?n=&context.{key}=``: the user's for-you list.

The list as the personal agent last computed it, minus items that became unavailable; a user
with no list yet gets trending items (``stage: "fallback"``). With a request context
(``context={json}`` and/or ``context.{key}=value``), the click model re-ranks the list's
first ``CONTEXT_CANDIDATES x n`` items in that context (time of day and day of week derived
from now) and the best ``n`` are served, each source with ``rerank: {"model": "ranking",
"score"}``. Served by the fast lane (``pipeline.api.fast``) when well-formed and without
context, by FastAPI otherwise; both call :func:`answer`.
User ids may hold ``/`` (as is or ``%2F``). ``n`` is at most the stored list's length
(``foryou_size``): a larger one is a 422, never a silently shorter list.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from pipeline.api.deps import MAX_ITEMS, Context, ServiceContext
from pipeline.api.fast import FastRoute, small_int
from pipeline.api.http import ERRORS, OrjsonResponse
from pipeline.api.limits import CountLimit, count_limit
from pipeline.core.ids import InvalidInput, check_id, valid_id
from pipeline.core.request_context import CONTEXT_PARAM, CONTEXT_PREFIX, parse_context
from pipeline.core.settings import Settings
from pipeline.features.personal.read import read_foryou_of
from pipeline.features.ranking.config import ranking_config
from pipeline.features.ranking.read import rank_items
from pipeline.features.trending.read import read_trending

# {user_id:path}: user ids may hold "/".
PATH = "/v1/users/{user_id:path}/recommendations"
DEFAULT_N = 10
# With a request context, this many times ``n`` of the list's first items are re-ranked.
CONTEXT_CANDIDATES = 3


def foryou_limit(settings: Settings) -> CountLimit:
    """``n`` up to the stored list's length."""
    return count_limit(
        settings,
        "foryou_size",
        MAX_ITEMS,
        DEFAULT_N,
        "items",
        "each user's stored for-you list holds {cap} items",
    )


async def answer(
    ctx: ServiceContext, user_id: str, n: int, context: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The response body for a valid user id, ``n`` and request context (None: none)."""
    settings = ctx.settings
    now_ms = int(time.time() * 1000)
    depth = n * CONTEXT_CANDIDATES if context else n
    async with ctx.bounded():
        # An anonymous id that logged in reads its user's list, ranked as that user.
        items, owner = await read_foryou_of(ctx.store, ctx.keys, ctx.availability, user_id, depth)
        if items is not None:
            # The list's stage: "personal", or "cold_start" for a user with little history.
            stage = items[0]["source"].get("stage", "personal") if items else "personal"
        else:
            stage = "fallback"
            kind = next(iter(settings.trending_kinds))
            window = next(iter(settings.trending_windows))
            half_life = settings.trending_windows[window]
            items = await read_trending(
                ctx.store,
                ctx.keys,
                ctx.availability,
                kind,
                window,
                half_life,
                None,
                depth,
                now_ms,
                ctx.trending_lists,
            )
            for item in items:
                item["source"] = {**item["source"], "stage": "fallback"}
        if context and items:
            items = await _in_context(ctx, owner, items, context, now_ms)
    body: dict[str, Any] = {
        "user_id": user_id,
        "stage": stage,
        "generated_at": now_ms,
        "items": items[:n],
    }
    if context:
        body["context"] = context
    return body


async def _in_context(
    ctx: ServiceContext,
    user_id: str,
    items: list[dict[str, Any]],
    context: dict[str, Any],
    now_ms: int,
) -> list[dict[str, Any]]:
    """``items`` ordered by the click model for ``user_id`` in ``context`` (stable)."""
    ranked = await rank_items(
        ctx.store,
        ctx.keys,
        user_id,
        [item["item_id"] for item in items],
        context,
        ranking_config(ctx.settings),
        now_ms,
    )
    by_id = {item["item_id"]: item for item in items}
    return [
        {
            **by_id[entry["item_id"]],
            "source": {
                **by_id[entry["item_id"]]["source"],
                "rerank": {"model": "ranking", "score": entry["score"]},
            },
        }
        for entry in ranked
    ]


def _context_of(request: Request) -> dict[str, Any]:
    """The request context of the query string (``context``, ``context.{key}``)."""
    params = request.query_params
    if len(params.getlist(CONTEXT_PARAM)) > 1:
        raise InvalidInput("context given twice")
    named = {name: params[name] for name in params if name.startswith(CONTEXT_PREFIX)}
    return parse_context(params.get(CONTEXT_PARAM), named)


def personal_router(settings: Settings) -> APIRouter:
    router = APIRouter()
    limit = foryou_limit(settings)

    @router.get(
        PATH,
        responses=ERRORS,
        summary="For you",
        description=(
            "Personalised items for one user: online latent factors blended with neighbours of "
            "the user's recent history (trending for users with little history). Excludes "
            "items the user bought, consumed, rated or blacklisted. Unknown users get trending items "
            f"with `source.stage` = `fallback`. {limit.sentence} A request context "
            "(`context.device=mobile`, `context.page=...`, or `context={json}`) re-ranks the "
            f"list's first {CONTEXT_CANDIDATES} x n items with the click model in that context "
            "(time of day and day of week derived from now); each item's source then carries "
            "`rerank: {model: ranking, score}`."
        ),
    )
    async def recommendations(
        request: Request, ctx: Context, user_id: str, n: int = limit.query()
    ) -> Response:
        check_id(user_id, "user_id")
        context = _context_of(request)
        return OrjsonResponse(await answer(ctx, user_id, limit.check(n), context or None))

    return router


def fast_routes(settings: Settings) -> list[FastRoute]:
    limit = foryou_limit(settings)

    async def recommendations(
        ctx: ServiceContext, path: dict[str, str], query: dict[str, str]
    ) -> bytes | None:
        user_id = path["user_id"]
        n = small_int(query.get("n"), limit.default, 1, limit.cap)
        if not valid_id(user_id) or n is None or set(query) - {"n"}:
            return None
        return orjson.dumps(await answer(ctx, user_id, n))

    return [FastRoute(PATH, recommendations)]
