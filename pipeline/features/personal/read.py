"""Reading a user's for-you list as the personal agent last stored it, and the user's history
as readers need it (exclusions, recent items)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import orjson

from pipeline.core.ids import valid_id
from pipeline.core.keys import Keys
from pipeline.features.catalog.read import Availability
from pipeline.store.base import Store


def alias_target(stored: bytes | None) -> str | None:
    """The user an anonymous id became at login, from its alias key
    (``{p}:user:{user_id}:alias``, written by the personal agent); None when it has none."""
    if not stored:
        return None
    target = stored.decode("utf-8", "replace")
    return target if valid_id(target) else None


async def read_foryou(
    store: Store, keys: Keys, availability: Availability, user_id: str, n: int
) -> list[dict[str, Any]] | None:
    """The stored list without unavailable items, or None when the user has none yet
    (:func:`read_foryou_of`, without saying whose list it is)."""
    items, _ = await read_foryou_of(store, keys, availability, user_id, n)
    return items


async def read_foryou_of(
    store: Store, keys: Keys, availability: Availability, user_id: str, n: int
) -> tuple[list[dict[str, Any]] | None, str]:
    """The stored list without unavailable items (None when the user has none yet), and
    the user it belongs to.

    An anonymous id that logged in reads the list of the user it became (its own state
    moved there), and that user is the owner: one round trip (the list, the alias and the
    catalog's version in one MGET) and a second one only for an id with an alias."""
    stored, alias, version = await store.mget(
        [keys.foryou(user_id), keys.user_alias(user_id), keys.catalog_version()]
    )
    owner = alias_target(alias) or user_id
    if owner != user_id:
        (stored,) = await store.mget([keys.foryou(owner)])
    hidden = await availability.settle(store, version)
    if stored is None:
        return None, owner
    items = orjson.loads(stored)
    return [item for item in items if item["item_id"] not in hidden][:n], owner


@dataclass(frozen=True, slots=True)
class HistoryView:
    """What readers need of a user's stored history: recent (item_id, entry type,
    timestamp_ms) newest first, and the items never to recommend (bought, consumed,
    rated, blacklisted)."""

    recent: tuple[tuple[str, str, int], ...] = ()
    excluded: frozenset[str] = frozenset()

    def items(self, types: Collection[str] | None = None) -> list[str]:
        """Distinct recent items, newest first, of entry ``types`` (None: every type)."""
        seen: dict[str, None] = {}
        for item_id, entry_type, _ in self.recent:
            if types is None or entry_type in types:
                seen.setdefault(item_id, None)
        return list(seen)


def parse_history(stored: bytes | None) -> HistoryView:
    """The stored history key (``{p}:user:{user_id}:history``) as a :class:`HistoryView`;
    absent or malformed reads as empty (Redis is a public contract others may write)."""
    if not stored:
        return HistoryView()
    try:
        state = orjson.loads(stored)
        recent = tuple(
            (str(item), str(kind), int(ts)) for item, kind, ts in reversed(state.get("recent", []))
        )
        excluded = frozenset(str(item) for item in state.get("excluded", {}))
        blacklisted = frozenset(str(item) for item in state.get("blacklisted", []))
    except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError):
        return HistoryView()
    return HistoryView(recent, excluded | blacklisted)


def parse_foryou(stored: bytes | None) -> list[dict[str, Any]] | None:
    """The stored for-you list (``{p}:foryou:{user_id}``), entries without a valid item id
    left out; None when absent or malformed."""
    if stored is None:
        return None
    try:
        items = orjson.loads(stored)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(items, list):
        return None
    return [e for e in items if isinstance(e, dict) and valid_id(e.get("item_id"))]
