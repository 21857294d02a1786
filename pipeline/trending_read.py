"""Reading trending lists from Redis (the reader's side of trending.py)."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from pipeline.http_common import member_id, unavailable_items
from pipeline.keys import Keys
from pipeline.trending import decayed, generation

# Extra candidates fetched per page so that unavailable items rarely leave the list short.
MAX_PAGES = 3


async def read_trending(
    redis: aioredis.Redis,
    keys: Keys,
    kind: str,
    window: str,
    half_life_s: float,
    category: str | None,
    n: int,
    now_ms: int,
) -> list[dict[str, Any]]:
    """Top ``n`` available items of one trending set, scores decayed to ``now_ms``.

    Reads the generation current at ``now_ms`` (the agent writes each event into its own
    generation and the next, so the current one is complete). Fetches ``2n + 20`` candidates
    per page and at most ``MAX_PAGES`` pages, so the list is short only when nearly all
    candidates are unavailable.
    """
    gen = generation(now_ms, half_life_s)
    key = keys.trending(kind, window, gen, category)
    source = {"model": "trending", "kind": kind, "window": window, "category": category}
    page = n * 2 + 20
    items: list[dict[str, Any]] = []
    for start in range(0, page * MAX_PAGES, page):
        rows = await redis.zrevrange(key, start, start + page - 1, withscores=True)
        # Ids outside the id contract cannot name a catalog key; never serve them.
        candidates = [(member_id(member), score) for member, score in rows]
        candidates = [(item_id, score) for item_id, score in candidates if item_id is not None]
        hidden = await unavailable_items(redis, keys, [item_id for item_id, _ in candidates])
        for item_id, stored in candidates:
            if item_id in hidden:
                continue
            score = decayed(stored, gen, half_life_s, now_ms)
            items.append({"item_id": item_id, "score": score, "source": source})
            if len(items) == n:
                return items
        if len(rows) < page:
            break
    return items
