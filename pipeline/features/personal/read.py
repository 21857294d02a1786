"""Reading a user's for-you list as the personal agent last stored it."""

from __future__ import annotations

from typing import Any

import orjson

from pipeline.core.keys import Keys
from pipeline.features.catalog.read import Availability
from pipeline.store.base import Store


async def read_foryou(
    store: Store, keys: Keys, availability: Availability, user_id: str, n: int
) -> list[dict[str, Any]] | None:
    """The stored list without unavailable items, or None when the user has none yet (one
    round trip: the list and the catalog's version in one MGET)."""
    stored, version = await store.mget([keys.foryou(user_id), keys.catalog_version()])
    hidden = await availability.settle(store, version)
    if stored is None:
        return None
    items = orjson.loads(stored)
    return [item for item in items if item["item_id"] not in hidden][:n]
