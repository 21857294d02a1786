"""A ``forget`` in the personal engine and agent (docs/privacy.md): every per-user key of the
user goes (history, factors, for-you list, pending entry, aliases), in the batch's writes and
in event order; item-level aggregates stay; the user's later events start a new state."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.core.events import Event, event_from_dict
from pipeline.features.catalog.read import Availability
from pipeline.features.personal.agent import PersonalHandler
from pipeline.features.personal.engine import Engine
from pipeline.features.personal.history import MAX_MERGED_IDS, UserHistory
from pipeline.features.personal.read import read_foryou
from pipeline.features.related.read import read_related
from pipeline.store.base import Writes
from pipeline.store.memory import MemoryStore
from tests.unit.features.helpers import KEYS, T0_MS, run, store_at
from tests.unit.features.helpers import settings as app_settings
from tests.unit.features.personal.helpers import ITEMS, LIMITS, T0, event_at, from_settings

SMALL = from_settings(mf_factors=4, mf_seed=7)


def ev(n: int, event_type: str, user: str, item: str | None = None, **fields: Any) -> dict:
    body = {"event_id": f"e{n}", "type": event_type, "user_id": user, "timestamp": T0_MS + n * 1000}
    if item is not None:
        body["item_id"] = item
    return {**body, **fields}


def forget(n: int, user: str) -> dict:
    return ev(n, "forget", user)


async def stored_history(store: MemoryStore, user: str) -> dict[str, Any] | None:
    raw = await store.get(KEYS.user_history(user))
    return None if raw is None else orjson.loads(raw)


async def user_keys(store: MemoryStore, user: str) -> dict[str, bytes | None]:
    """Every per-user string key of ``user`` the personal agent writes, with its value."""
    names = [KEYS.user_history(user), KEYS.user_factors(user), KEYS.foryou(user)]
    names.append(KEYS.user_alias(user))
    return dict(zip(names, await store.mget(names), strict=True))


# --- the engine ------------------------------------------------------------------------------


def test_the_engine_forgets_a_user_and_reports_what_to_delete():
    engine = Engine(SMALL)
    engine.learn(event_at("click", "anon-1", ITEMS[0], T0))
    engine.learn(event_at("login", "u1", None, T0 + 1, previous_user_id="anon-1"))
    engine.learn(event_at("buy", "u1", ITEMS[1], T0 + 2, value=1))
    engine.learn(event_at("click", "u2", ITEMS[1], T0 + 3))
    engine.drain_changes()
    assert engine.histories["u1"].merged == {"anon-1": None}
    engine.learn(
        event_from_dict({"event_id": "f", "type": "forget", "user_id": "u1", "timestamp": T0 + 4})
    )
    changes = engine.drain_changes()
    assert changes.forgotten == {"u1"}
    # The anonymous id that became u1 loses its alias too, and the user's own alias key goes.
    assert changes.unaliased == {"u1", "anon-1"}
    assert "u1" not in changes.users and "u1" not in engine.histories
    assert "u1" not in engine.model.user_factors and "anon-1" not in engine.aliases
    # Aggregates stay: the items keep their factors and co-occurrence.
    assert ITEMS[1] in engine.model.item_index
    assert engine.histories["u2"].seen_items() == {ITEMS[1]}
    # The anonymous id is on its own again: its next event is not the forgotten user's.
    engine.learn(event_at("click", "anon-1", ITEMS[2], T0 + 5))
    assert "u1" not in engine.histories
    assert engine.histories["anon-1"].seen_items() == {ITEMS[2]}


def test_forgetting_an_anonymous_id_keeps_the_user_it_became():
    engine = Engine(SMALL)
    engine.learn(event_at("click", "anon-2", ITEMS[0], T0))
    engine.learn(event_at("login", "u3", None, T0 + 1, previous_user_id="anon-2"))
    engine.drain_changes()
    engine.learn(
        event_from_dict(
            {"event_id": "f", "type": "forget", "user_id": "anon-2", "timestamp": T0 + 2}
        )
    )
    changes = engine.drain_changes()
    assert changes.forgotten == {"anon-2"} and changes.unaliased == {"anon-2"}
    # The user keeps its history (the merged events are the user's now), minus the id.
    assert "u3" in changes.users
    assert engine.histories["u3"].merged == {}
    assert engine.histories["u3"].seen_items() == {ITEMS[0]}


def test_a_history_remembers_a_bounded_number_of_merged_ids():
    history = UserHistory(LIMITS)
    ids = [f"anon-{n}" for n in range(MAX_MERGED_IDS + 3)]
    assert history.add_merged(ids[:MAX_MERGED_IDS]) == []
    # A repeat moves to the newest place; the oldest are dropped first.
    assert history.add_merged([ids[0], *ids[MAX_MERGED_IDS:]]) == ids[1:4]
    assert list(history.merged)[-1] == ids[-1] and ids[0] in history.merged
    restored = UserHistory.from_state(history.to_state(), LIMITS)
    assert restored.merged == history.merged


def test_an_alias_dropped_from_a_full_history_is_deleted():
    engine = Engine(SMALL)
    for n in range(MAX_MERGED_IDS + 1):
        engine.learn(event_at("login", "busy", None, T0 + n, previous_user_id=f"anon-{n}"))
    changes = engine.drain_changes()
    # The oldest alias is deleted rather than left unlisted (a forget could not find it).
    assert "anon-0" in changes.unaliased and "anon-0" not in changes.aliases
    assert "anon-0" not in engine.aliases and len(engine.histories["busy"].merged) == MAX_MERGED_IDS


KINDS = ["click", "buy", "basket", "blacklist", "forget"]


@st.composite
def batches(draw: st.DrawFn) -> list[Event]:
    events = []
    for index in range(draw(st.integers(1, 30))):
        kind = draw(st.sampled_from(KINDS))
        raw: dict[str, Any] = {
            "event_id": f"h{index}",
            "type": kind,
            "user_id": draw(st.sampled_from(["u1", "u2", "u3"])),
            # Few distinct times: ties with the forget happen.
            "timestamp": T0 + draw(st.integers(0, 8)) * 1000,
        }
        if kind != "forget":
            raw["item_id"] = draw(st.sampled_from(ITEMS[:6]))
        events.append(event_from_dict(raw))
    return events


@given(batches())
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_a_forgotten_users_history_holds_only_what_came_after_the_last_forget(events):
    engine = Engine(SMALL)
    changes = engine.learn_batch(events)
    ordered = sorted(events, key=lambda e: e.timestamp_ms)  # stable: the engine's order
    for user in {"u1", "u2", "u3"}:
        mine = [e for e in ordered if e.user_id == user]
        forgets = [i for i, e in enumerate(mine) if e.event_type == "forget"]
        if not forgets:
            continue
        after = mine[forgets[-1] + 1 :]
        assert user in changes.forgotten
        if not after:
            assert user not in engine.histories and user not in changes.users
            assert user not in engine.model.user_factors
            continue
        fresh = Engine(SMALL)
        fresh.learn_batch(after)
        assert engine.histories[user].to_state() == fresh.histories[user].to_state()
        assert user in changes.users


# --- the agent on the in-memory store --------------------------------------------------------


async def learned_u1(store: MemoryStore, handler: PersonalHandler) -> None:
    """u1 browsed as anon-9, logged in, clicked and bought; u2 clicked too."""
    await run(
        handler,
        store,
        [
            ev(1, "click", "anon-9", "d"),
            ev(2, "login", "u1", previous_user_id="anon-9"),
            ev(3, "click", "u1", "a"),
            ev(4, "buy", "u1", "b"),
            ev(5, "click", "u2", "a"),
            ev(6, "click", "u2", "c"),
        ],
    )


@pytest.mark.asyncio
async def test_a_forget_deletes_every_key_of_the_user_and_keeps_aggregates() -> None:
    store = store_at(T0_MS)
    handler = PersonalHandler(app_settings(), KEYS)
    await learned_u1(store, handler)
    before = await user_keys(store, "u1")
    assert before[KEYS.user_history("u1")] and before[KEYS.user_factors("u1")]
    assert before[KEYS.foryou("u1")]
    assert await store.get(KEYS.user_alias("anon-9")) == b"u1"
    # u1 also waits for a list in Redis (as a worker that ran out of budget leaves it).
    await store.apply(Writes().zadd(KEYS.foryou_pending(), {"u1": 1.0, "u2": 1.0}))
    u2_before = await user_keys(store, "u2")

    await run(handler, store, [forget(7, "u1")])

    assert set((await user_keys(store, "u1")).values()) == {None}
    assert await store.get(KEYS.user_alias("anon-9")) is None
    assert await store.zmscore(KEYS.foryou_pending(), ["u1", "u2"]) == [None, 1.0]
    assert [key for key in await store.scan("t:*") if "u1" in key or "anon-9" in key] == []
    assert await read_foryou(store, KEYS, Availability(KEYS), "u1", 10) is None
    # Other users and the item-level aggregates are untouched.
    assert await user_keys(store, "u2") == u2_before
    related = await read_related(store, KEYS, Availability(KEYS), "a", "also_clicked", 10, 200, 0.5)
    # u1's co-click (d, then a) is an aggregate: it stays.
    assert [item["item_id"] for item in related] == ["c", "d"]
    assert set(await store.hgetall(KEYS.mf_items())) == {b"a", b"b", b"c", b"d"}


@pytest.mark.asyncio
async def test_after_a_forget_the_user_and_the_anonymous_id_start_afresh() -> None:
    store = store_at(T0_MS)
    handler = PersonalHandler(app_settings(), KEYS)
    await learned_u1(store, handler)
    await run(handler, store, [forget(7, "u1")])
    # A fresh worker (nothing cached) and the same worker agree.
    for worker, (n, anonymous_item, user_item) in [
        (handler, (8, "e", "f")),
        (PersonalHandler(app_settings(), KEYS), (10, "g", "h")),
    ]:
        await run(
            worker,
            store,
            [ev(n, "click", "anon-9", anonymous_item), ev(n + 1, "click", "u1", user_item)],
        )
    # The anonymous id no longer leads to u1: its events are its own.
    assert recent_items(await stored_history(store, "anon-9")) == ["e", "g"]
    assert recent_items(await stored_history(store, "u1")) == ["f", "h"]
    assert await read_foryou(store, KEYS, Availability(KEYS), "u1", 10) is not None


def recent_items(history: dict[str, Any] | None) -> list[str]:
    assert history is not None
    return [entry[0] for entry in history["recent"]]


@pytest.mark.asyncio
async def test_within_a_batch_the_forget_erases_what_came_before_it_only() -> None:
    store = store_at(T0_MS)
    handler = PersonalHandler(app_settings(), KEYS)
    # Batch order is not event order: the engine goes by timestamp.
    await run(
        handler,
        store,
        [
            ev(4, "click", "u5", "c"),
            ev(1, "click", "u5", "a"),
            forget(3, "u5"),
            ev(2, "buy", "u5", "b"),
        ],
    )
    history = await stored_history(store, "u5")
    assert recent_items(history) == ["c"]
    assert history is not None and history["excluded"] == {}
    assert await store.get(KEYS.user_factors("u5")) is not None
    listed = await read_foryou(store, KEYS, Availability(KEYS), "u5", 10)
    # The purchase before the forget no longer excludes its item.
    assert listed is not None and "b" in [item["item_id"] for item in listed]


@pytest.mark.asyncio
async def test_a_forget_that_ends_the_batch_leaves_no_list_behind() -> None:
    store = store_at(T0_MS)
    handler = PersonalHandler(app_settings(), KEYS)
    await run(handler, store, [ev(1, "click", "u6", "a"), forget(2, "u6")])
    assert set((await user_keys(store, "u6")).values()) == {None}
    assert await store.zrange(KEYS.foryou_pending(), 0, -1) == []
    assert "u6" not in handler.pending


@pytest.mark.asyncio
async def test_forgetting_an_anonymous_id_rewrites_the_users_history_without_it() -> None:
    store = store_at(T0_MS)
    handler = PersonalHandler(app_settings(), KEYS)
    await learned_u1(store, handler)
    assert (await stored_history(store, "u1") or {})["merged"] == ["anon-9"]
    await run(PersonalHandler(app_settings(), KEYS), store, [forget(7, "anon-9")])
    history = await stored_history(store, "u1")
    assert history is not None and history["merged"] == []
    # What the anonymous id did before the login is the user's now, and stays.
    assert recent_items(history) == ["d", "a", "b"]
    assert await store.get(KEYS.user_alias("anon-9")) is None


@pytest.mark.asyncio
async def test_a_retried_batch_forgets_exactly_as_one_attempt() -> None:
    once, twice = store_at(T0_MS), store_at(T0_MS)
    for store in (once, twice):
        await learned_u1(store, PersonalHandler(app_settings(), KEYS))
    batch = [forget(7, "u1"), ev(8, "click", "u1", "x")]
    await run(PersonalHandler(app_settings(), KEYS), once, batch)
    handler = PersonalHandler(app_settings(), KEYS)
    records = [handler.decode(orjson.dumps(value))[0][0] for value in batch]
    await handler.plan(twice, records)  # the transaction does not commit
    handler.aborted()
    await twice.apply(await handler.plan(twice, records))
    handler.committed()
    for user in ("u1", "u2", "anon-9"):
        assert await user_keys(twice, user) == await user_keys(once, user)


@pytest.mark.asyncio
async def test_a_copy_cached_by_another_worker_does_not_bring_a_forgotten_user_back() -> None:
    store = store_at(T0_MS)
    # The anonymous id's partition belongs to worker B; the user's to worker A.
    worker_a = PersonalHandler(app_settings(), KEYS)
    worker_b = PersonalHandler(app_settings(), KEYS)
    await run(worker_a, store, [ev(1, "login", "u7", previous_user_id="anon-7")])
    await run(worker_b, store, [ev(2, "click", "anon-7", "old")])
    assert recent_items(await stored_history(store, "u7")) == ["old"]
    await run(worker_a, store, [forget(3, "u7")])
    # B still believes anon-7 is u7, with u7's old history cached: it must not write it back.
    await run(worker_b, store, [ev(4, "click", "anon-7", "new")])
    for user in ("u7", "anon-7"):
        history = await stored_history(store, user)
        assert history is None or "old" not in recent_items(history)
