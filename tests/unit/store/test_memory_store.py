"""The store contract (tests/store_contract.py) on the in-memory store, plus what only it has:
a clock that tests can move."""

from __future__ import annotations

import pytest

from pipeline.store.base import Writes
from pipeline.store.memory import MemoryStore
from tests.store_contract import *  # noqa: F403 - the shared contract suite
from tests.store_contract import Key
from tests.store_contract_related import *  # noqa: F403 - the contract, continued

pytestmark = pytest.mark.asyncio


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def key() -> Key:
    return lambda name: f"t:{name}"


@pytest.mark.asyncio
async def test_keys_expire_when_the_clock_passes_their_time() -> None:
    now = [1_000.0]
    store = MemoryStore(clock=lambda: now[0])
    await store.apply(Writes().set("a", 1, 10).zadd("z", {"m": 1}).expire_at("z", 1_005))
    now[0] = 1_004.9
    assert await store.get("a") == b"1"
    assert await store.zrange("z", 0, -1) == [(b"m", 1.0)]
    now[0] = 1_005.0
    assert await store.zrange("z", 0, -1) == []
    now[0] = 1_010.0
    assert await store.get("a") is None
    assert await store.scan("*") == []


@pytest.mark.asyncio
async def test_a_value_of_another_type_is_refused_like_wrongtype() -> None:
    store = MemoryStore()
    await store.apply(Writes().set("s", "x"))
    with pytest.raises(TypeError, match="WRONGTYPE"):
        await store.hget("s", "f")
    with pytest.raises(TypeError, match="WRONGTYPE"):
        await store.apply(Writes().zadd("s", {"m": 1.0}))
