"""Shared pieces of the HTTP tests: a client that runs an app's lifespan, without servers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI

from pipeline.api.deps import ServiceContext
from pipeline.api.reader import create_reader_app
from pipeline.core.settings import Settings
from pipeline.store.base import Store
from tests.unit.features.helpers import KEYS, settings


async def client_of(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client on ``app`` (ASGI transport) while the app's lifespan runs."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


async def reader_on(
    store: Store, config: Settings | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """A client on a reader app (``config``, default: the test settings) whose routes read
    ``store``."""
    config = config or settings()
    app = create_reader_app(config)
    async with app.router.lifespan_context(app):
        app.state.context = ServiceContext.of(config, KEYS, store)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client
