"""A user's attributes as the ``users`` agent group stored them (no HTTP route serves them:
they may be private)."""

from __future__ import annotations

from typing import Any

from pipeline.core.keys import Keys
from pipeline.core.users import stored_attribute
from pipeline.store.base import Store


async def user_attributes(store: Store, keys: Keys, user_id: str) -> dict[str, Any]:
    """The user's attributes (none for an unknown or forgotten user); malformed fields are
    left out."""
    stored = await store.hgetall(keys.user_attributes(user_id))
    found = {name.decode(errors="replace"): stored_attribute(raw) for name, raw in stored.items()}
    return {name: value for name, value in found.items() if value is not None}
