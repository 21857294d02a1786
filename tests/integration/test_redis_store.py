"""The store contract (tests/store_contract.py) on RedisStore against a real redis-server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from pipeline.store.redis import RedisStore
from pipeline.tools.local import free_port, start_redis
from tests.store_contract import *  # noqa: F403 - the shared contract suite
from tests.store_contract import Key

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    server = start_redis(free_port())
    try:
        yield server.url
    finally:
        server.stop()


@pytest_asyncio.fixture
async def store(redis_url: str) -> AsyncIterator[RedisStore]:
    store = RedisStore(aioredis.Redis.from_url(redis_url))
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
def key() -> Key:
    prefix = uuid.uuid4().hex[:10]
    return lambda name: f"{prefix}:{name}"
