"""A user's attributes as the ``users`` agent group stored them (no HTTP route serves them:
they may be private)."""

from __future__ import annotations

from typing import Any

from pipeline.core.keys import Keys
from pipeline.core.users import stored_attribute
from pipeline.store.base import Reads, Store


def _parsed(stored: dict[bytes, bytes]) -> dict[str, Any]:
    found = {name.decode(errors="replace"): stored_attribute(raw) for name, raw in stored.items()}
    return {name: value for name, value in found.items() if value is not None}


async def user_attributes(store: Store, keys: Keys, user_id: str) -> dict[str, Any]:
    """The user's attributes (none for an unknown or forgotten user); malformed fields are
    left out."""
    return _parsed(await store.hgetall(keys.user_attributes(user_id)))


async def users_attributes(
    store: Store, keys: Keys, user_ids: list[str]
) -> dict[str, dict[str, Any]]:
    """:func:`user_attributes` of several users in one round trip (users without any are
    left out)."""
    if not user_ids:
        return {}
    reads = Reads()
    for user_id in user_ids:
        reads.hgetall(keys.user_attributes(user_id))
    rows = await store.read(reads)
    found = {user_id: _parsed(row) for user_id, row in zip(user_ids, rows, strict=True)}
    return {user_id: attributes for user_id, attributes in found.items() if attributes}
