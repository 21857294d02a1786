"""The store contract (tests/store_contract.py) on RedisStore against a real redis-server."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
import redis

from pipeline.core.settings import load_settings
from pipeline.store.base import Reads, Writes
from pipeline.store.redis import RedisStore, connect
from pipeline.tools.local import free_port, start_redis
from tests.store_contract import *  # noqa: F403 - the shared contract suite
from tests.store_contract import Key
from tests.store_contract_related import *  # noqa: F403 - the contract, continued

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
    # connect() is how every process builds its store (hiredis command packing included).
    store = connect(load_settings(redis_url=redis_url))
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
def key() -> Key:
    prefix = uuid.uuid4().hex[:10]
    return lambda name: f"{prefix}:{name}"


async def test_scripts_are_loaded_again_after_a_script_flush(store: RedisStore, key: Key) -> None:
    """Writes run as scripts (EVALSHA); a Redis that lost its script cache (restart,
    failover, SCRIPT FLUSH) gets them again before the transaction, never a partial one."""
    await store.apply(Writes().set(key("a"), 1))
    await store.redis.script_flush()
    await store.apply(Writes().set(key("a"), 2).zincr_trim(key("z"), {"m": 1.0}, 5))
    assert await store.get(key("a")) == b"2"
    assert await store.zrange(key("z"), 0, -1) == [(b"m", 1.0)]
    # Reads run as a script too: alone (EVALSHA, loaded again on NOSCRIPT) and pipelined.
    sets = [(key("z"), key("pop"), "also_clicked")]
    blend = Reads().related_blend(sets, key("hidden"), "x", 5, 0.5, 5)
    await store.redis.script_flush()
    assert await store.read(blend) == [[("m", 1.0, "also_clicked")]]
    await store.redis.script_flush()
    both = Reads().get(key("a")).related_blend(sets, key("hidden"), "x", 5, 0.5, 5)
    assert await store.read(both) == [b"2", [("m", 1.0, "also_clicked")]]


@pytest.mark.parametrize("protocol", [2, 3])
async def test_ranges_read_the_same_on_either_protocol(
    redis_url: str, key: Key, protocol: int
) -> None:
    """Ranges go as plain commands and are paired here: RESP3 answers [member, score] pairs,
    RESP2 a flat list with scores as text; both must read as (member, float) pairs. The
    related-blend script answers the same rows on both."""
    store = connect(load_settings(redis_url=f"{redis_url}?protocol={protocol}"))
    try:
        await store.apply(Writes().zadd(key("z"), {"a": 1.5, "b": -2.0, "c": 1e-300}))
        reads = Reads().zrange(key("z"), 0, -1, desc=True)
        reads.zrange_by_score(key("z"), "-inf", "+inf", offset=1, count=5)
        reads.zrange(key("none"), 0, -1)
        reads.related_blend([(key("z"), key("pop"), "also_clicked")], key("h"), "b", 5, 0.5, 5)
        assert await store.read(reads) == [
            [(b"a", 1.5), (b"c", 1e-300), (b"b", -2.0)],
            [(b"c", 1e-300), (b"a", 1.5)],
            [],
            [("a", 1.5, "also_clicked"), ("c", 1e-300, "also_clicked")],
        ]
    finally:
        await store.close()


async def test_meanwhile_runs_while_redis_applies_the_writes(
    store: RedisStore, redis_url: str, key: Key
) -> None:
    """The transaction's commands are in Redis before ``meanwhile`` runs: another client
    sees its writes from inside ``meanwhile`` (whose work thus overlaps Redis's)."""
    other = redis.Redis.from_url(redis_url)
    seen: list[bytes | None] = []

    async def build(values: list[bytes | None]) -> Writes | None:
        return Writes().set(key("fence"), 1).set(key("data"), "applied")

    def meanwhile() -> None:
        deadline = time.monotonic() + 5.0
        value = other.get(key("data"))
        while value is None and time.monotonic() < deadline:
            value = other.get(key("data"))
        seen.append(value)

    try:
        assert await store.transact([key("fence")], build, meanwhile=meanwhile)
    finally:
        other.close()
    assert seen == [b"applied"]


async def test_a_transaction_cancelled_as_it_is_sent_leaves_a_working_store(
    store: RedisStore, key: Key
) -> None:
    """Cancelled at the turn that sends its transaction (a worker stopping), ``transact``
    raises CancelledError, not an error of a connection read twice, and the store serves
    the next transaction."""
    ran: list[str] = []
    task: asyncio.Future[bool] | None = None

    async def build(values: list[bytes | None]) -> Writes | None:
        # Nothing suspends between here and the turn that sends: the cancel lands there.
        assert task is not None
        asyncio.get_running_loop().call_soon(task.cancel)
        return Writes().set(key("fence"), 1)

    task = asyncio.ensure_future(
        store.transact([key("fence")], build, meanwhile=lambda: ran.append("meanwhile"))
    )
    with pytest.raises(asyncio.CancelledError):
        await task
    assert ran == []

    async def again(values: list[bytes | None]) -> Writes | None:
        return Writes().set(key("fence"), 2)

    assert await store.transact([key("fence")], again)
    assert await store.get(key("fence")) == b"2"
