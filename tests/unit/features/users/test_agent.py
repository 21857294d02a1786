"""The users handler on the in-memory store: the latest record replaces the stored one, a
forget erases it (and same-batch records made before it), other events are ignored."""

from __future__ import annotations

import orjson
import pytest

from pipeline.core.events import Rejection
from pipeline.features.users.agent import UsersHandler
from pipeline.features.users.read import user_attributes
from pipeline.store.memory import MemoryStore
from tests.unit.features.helpers import KEYS, T0_MS, run, settings

pytestmark = pytest.mark.asyncio


def forget(user_id: str, at_ms: int) -> dict:
    return {
        "event_id": f"f-{user_id}-{at_ms}",
        "type": "forget",
        "user_id": user_id,
        "timestamp": at_ms,
    }


def handler() -> UsersHandler:
    return UsersHandler(settings(), KEYS)


async def test_the_latest_record_replaces_the_earlier_one_whole() -> None:
    store = MemoryStore()
    users = handler()
    await run(users, store, [{"user_id": "u1", "attributes": {"country": "DE", "tier": "gold"}}])
    assert await user_attributes(store, KEYS, "u1") == {"country": "DE", "tier": "gold"}
    await run(
        users,
        store,
        [
            {"user_id": "u1", "attributes": {"country": "FR"}},
            {"user_id": "u2", "attributes": {"interests": ["run", "hike"], "age": 31}},
        ],
    )
    assert await user_attributes(store, KEYS, "u1") == {"country": "FR"}
    assert await user_attributes(store, KEYS, "u2") == {"interests": ["run", "hike"], "age": 31}
    assert await user_attributes(store, KEYS, "nobody") == {}


async def test_forget_erases_the_attributes_and_records_made_before_it() -> None:
    store = MemoryStore()
    users = handler()
    await run(users, store, [{"user_id": "u1", "attributes": {"country": "DE"}}])
    await run(users, store, [{"user_id": "u2", "attributes": {"country": "IT"}}])
    await run(
        users,
        store,
        [
            # Made after the forget (re-registration): kept.
            {"user_id": "u2", "attributes": {"country": "ES"}, "updated_at": T0_MS + 10},
            forget("u1", T0_MS),
            forget("u2", T0_MS),
            # Arrives after it in the batch but was made before it: erased with it.
            {"user_id": "u1", "attributes": {"country": "AT"}, "updated_at": T0_MS - 10},
        ],
    )
    assert await store.hgetall(KEYS.user_attributes("u1")) == {}
    assert await user_attributes(store, KEYS, "u2") == {"country": "ES"}


async def test_events_other_than_forget_are_ignored_and_bad_ones_rejected_like_events() -> None:
    users = handler()
    login = {
        "event_id": "l1",
        "type": "login",
        "user_id": "u1",
        "previous_user_id": "anon",
        "timestamp": T0_MS,
    }
    assert users.decode(orjson.dumps(login)) == ([], [])
    records, rejections = users.decode(orjson.dumps([login, forget("u1", T0_MS), {"type": "x"}]))
    assert [r.user_id for r in records] == ["u1"]
    assert rejections == [Rejection("event_id is required", 2)]
    assert users.decode(b'{"attributes": {}}')[1] == [Rejection("user_id is required")]
    assert users.decode(None)[1] == [Rejection("empty message (no value)")]
