"""Shared pieces of the HTTP tests: a client that runs an app's lifespan, without servers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI


async def client_of(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client on ``app`` (ASGI transport) while the app's lifespan runs."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client
