"""Reading a user's for-you list as the personal agent last stored it."""

from __future__ import annotations

from typing import Any

import orjson

from pipeline.core.keys import Keys
from pipeline.features.catalog.read import unavailable_items
from pipeline.store.base import Store


async def read_foryou(
    store: Store, keys: Keys, user_id: str, n: int
) -> list[dict[str, Any]] | None:
    """The stored list without unavailable items, or None when the user has none yet."""
    stored = await store.get(keys.foryou(user_id))
    if stored is None:
        return None
    items = orjson.loads(stored)
    hidden = await unavailable_items(store, keys, [item["item_id"] for item in items])
    return [item for item in items if item["item_id"] not in hidden][:n]
