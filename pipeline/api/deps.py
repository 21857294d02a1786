"""Typed dependencies of the HTTP routes, declared once (``Annotated[..., Depends()]``).

Every route that reads state takes ``ctx: Context``: the settings, the key schema, the store,
and :meth:`ServiceContext.bounded`, which bounds a group of store calls by the service's
deadline and turns store trouble into a 503. The app's lifespan sets ``app.state.context``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request

from pipeline.api.http import DEADLINE_FACTOR, store_call
from pipeline.core.kept import KeptLists
from pipeline.core.keys import Keys
from pipeline.core.settings import Settings
from pipeline.features.catalog.read import Availability
from pipeline.store.base import Store

# Longest item list any endpoint returns, and longest user list (segments).
MAX_ITEMS = 500
MAX_USERS = 1000


@dataclass(frozen=True, slots=True)
class ServiceContext:
    settings: Settings
    keys: Keys
    store: Store
    availability: Availability
    related_lists: KeptLists
    trending_lists: KeptLists

    @classmethod
    def of(cls, settings: Settings, keys: Keys, store: Store) -> ServiceContext:
        """A reader's context: the store, and the caches it keeps between requests."""
        return cls(
            settings,
            keys,
            store,
            Availability(keys),
            KeptLists(settings.reader_related_cache_ms / 1000),
            KeptLists(settings.reader_trending_cache_ms / 1000),
        )

    @property
    def deadline_s(self) -> float:
        return self.settings.redis_timeout_s * DEADLINE_FACTOR

    def bounded(self) -> contextlib.AbstractAsyncContextManager[None]:
        """``async with ctx.bounded():`` around the store calls of one request."""
        return store_call(self.deadline_s, self.store.transient_errors)


# Async on purpose: FastAPI runs a plain ``def`` dependency in a thread pool, which costs a
# hand-off to another thread on every request.
async def service_context(request: Request) -> ServiceContext:
    return request.app.state.context


Context = Annotated[ServiceContext, Depends(service_context)]
ItemCount = Annotated[
    int, Query(ge=1, le=MAX_ITEMS, description=f"Number of items, 1-{MAX_ITEMS}.")
]
UserCount = Annotated[
    int, Query(ge=1, le=MAX_USERS, description=f"Number of users, 1-{MAX_USERS}.")
]
