"""The personal handler's plan and the for-you and related reads, on the in-memory store."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from pipeline.features.catalog.read import Availability
from pipeline.features.personal import agent
from pipeline.features.personal.agent import LOADED_AHEAD, PersonalHandler
from pipeline.features.personal.read import read_foryou
from pipeline.features.related.read import read_related
from pipeline.store.base import Writes
from pipeline.store.memory import MemoryStore
from tests.unit.features.helpers import KEYS, T0_MS, run, settings, store_at

pytestmark = pytest.mark.asyncio


def ev(n: int, event_type: str, user: str, item: str | None = None, **fields: object) -> dict:
    body = {"event_id": f"e{n}", "type": event_type, "user_id": user, "timestamp": T0_MS + n * 1000}
    if item is not None:
        body["item_id"] = item
    return {**body, **fields}


async def test_a_batch_writes_lists_related_items_and_exclusions() -> None:
    store = store_at(T0_MS)
    handler = PersonalHandler(settings(), KEYS)
    events = [
        ev(1, "click", "u1", "a"),
        ev(2, "click", "u1", "b"),
        ev(3, "buy", "u1", "b"),
        ev(4, "click", "u2", "a"),
        ev(5, "click", "u2", "c"),
    ]
    await run(handler, store, events)
    listed = await read_foryou(store, KEYS, Availability(KEYS), "u1", 10)
    assert listed is not None
    ids = [item["item_id"] for item in listed]
    # Bought items are never recommended back.
    assert "b" not in ids
    assert listed[0]["source"]["model"] == "for_you"
    # u1 clicked a then b: each is the other's "also clicked".
    # b and c tie (one co-click each, one click each): the smaller id first.
    related = await read_related(store, KEYS, Availability(KEYS), "a", "also_clicked", 10, 200, 0.5)
    assert [item["item_id"] for item in related] == ["b", "c"]
    assert related[0]["source"] == {
        "model": "related",
        "relation": "also_clicked",
        "source_items": ["a"],
    }
    assert await store.smembers(KEYS.related_anchors()) == {b"a", b"b", b"c"}
    assert await read_foryou(store, KEYS, Availability(KEYS), "nobody", 10) is None


async def test_login_moves_the_anonymous_history_to_the_user() -> None:
    store = store_at(T0_MS)
    handler = PersonalHandler(settings(), KEYS)
    await run(handler, store, [ev(1, "click", "anon-1", "a"), ev(2, "buy", "anon-1", "b")])
    assert await read_foryou(store, KEYS, Availability(KEYS), "anon-1", 5) is not None
    await run(handler, store, [ev(3, "login", "u9", previous_user_id="anon-1")])
    assert await store.get(KEYS.user_alias("anon-1")) == b"u9"
    # The anonymous id's own list is gone; reading it follows the alias to the user's list.
    assert await store.get(KEYS.foryou("anon-1")) is None
    merged = await read_foryou(store, KEYS, Availability(KEYS), "u9", 5)
    assert merged is not None
    assert await read_foryou(store, KEYS, Availability(KEYS), "anon-1", 5) == merged
    history = orjson.loads(await store.get(KEYS.user_history("u9")) or b"{}")
    assert [entry[0] for entry in history["recent"]] == ["a", "b"]
    assert "b" in history["excluded"]
    # A late event of the anonymous id, learned by a fresh worker, reaches the user.
    fresh = PersonalHandler(settings(), KEYS)
    await run(fresh, store, [ev(4, "click", "anon-1", "c")])
    history = orjson.loads(await store.get(KEYS.user_history("u9")) or b"{}")
    assert [entry[0] for entry in history["recent"]] == ["a", "b", "c"]


async def test_a_restarted_handler_predicts_what_the_first_one_would() -> None:
    store = store_at(T0_MS)
    first = PersonalHandler(settings(), KEYS)
    await run(first, store, [ev(n, "click", f"u{n % 3}", f"i{n % 7}") for n in range(1, 40)])
    batch = [ev(100, "click", "u1", "i3"), ev(101, "buy", "u1", "i5")]
    second = PersonalHandler(settings(), KEYS)
    records = await run(second, store, batch)
    # The first handler learns the same batch in memory only: both must now agree.
    first.engine.learn_batch(records)
    before = first.engine.recommend("u1", 10)
    after = second.engine.recommend("u1", 10)
    assert [r.item_id for r in after] == [r.item_id for r in before]
    for old, new in zip(before, after, strict=True):
        assert new.score == pytest.approx(old.score, rel=1e-5, abs=1e-6)


async def test_an_aborted_batch_is_forgotten() -> None:
    store = store_at(T0_MS)
    handler = PersonalHandler(settings(), KEYS)
    records = [handler.decode(orjson.dumps(ev(1, "click", "u1", "a")))[0][0]]
    await handler.plan(store, records)
    handler.aborted()
    # Nothing reached the store, and the engine starts again from it.
    assert handler.engine.histories == {}
    assert await read_foryou(store, KEYS, Availability(KEYS), "u1", 5) is None


async def test_with_content_on_new_catalog_items_join_the_lists_of_users_with_that_taste() -> None:
    """The content agent's vectors reach the personal agent: every item's at start, then
    what each content version changed (``content:changed``), with no event of the item."""
    from pipeline.features.personal.mf import ImplicitMF

    store, personal, publish = await content_world()
    # Every catalog item has a factor row, clicked or not.
    rows = await store.hgetall(KEYS.mf_items())
    assert {item.decode() for item in rows} == {f"{g}{n}" for g in "kg" for n in range(8)}

    # A new kitchen item (the catalog records its creation), its vector, then the kitchen
    # user's next event (not with it).
    await publish()
    assert await store.zrange_by_score(KEYS.content_changed(), "(1", "+inf") == [(b"k-new", 2.0)]
    await run(personal, store, [ev(100, "click", "u0", "k1"), ev(101, "click", "u1", "g1")])
    row = (await store.hgetall(KEYS.mf_items()))[b"k-new"]
    assert ImplicitMF.row_index(row) == 16

    kitchen, garden = await listed(store, "u0"), await listed(store, "u1")
    assert "k-new" in kitchen[:10]
    assert "k-new" not in garden[:10]


async def content_world(refresh_users: int = 1000) -> tuple[MemoryStore, PersonalHandler, Any]:
    """Sixteen items with text (kitchen k0-k7, garden g0-g7), a personal handler after 80
    clicks (u0 and u2 click kitchen items, u1 and u3 garden ones), and a function that
    publishes a new kitchen item (catalog and content)."""
    from pipeline.features.catalog.agent import CatalogHandler
    from pipeline.features.content.agent import ContentHandler

    store = store_at(T0_MS)
    on = settings(content_taste_weight=1.0, content_refresh_users=refresh_users)
    content = ContentHandler(on, KEYS)
    words = {"k": "kitchen knife steel chef", "g": "garden hose green water"}
    catalog = [
        {"item_id": f"{g}{n}", "title": f"{w} {n}"} for g, w in words.items() for n in range(8)
    ]
    await run(content, store, catalog)
    personal = PersonalHandler(on, KEYS)
    assert await personal.idle(store) is None  # nothing loaded before the first batch
    events = [ev(n, "click", f"u{n % 4}", f"{'kg'[n % 2]}{(n * 5) % 8}") for n in range(1, 81)]
    await run(personal, store, events)

    async def publish() -> None:
        new_item = {"item_id": "k-new", "title": "chef knife", "created_at": T0_MS + 90_000}
        await run(CatalogHandler(KEYS, on), store, [new_item])
        await run(content, store, [new_item])

    return store, personal, publish


async def listed(store: MemoryStore, user: str) -> list[str]:
    found = await read_foryou(store, KEYS, Availability(KEYS), user, 50)
    assert found is not None
    return [item["item_id"] for item in found]


@pytest.mark.parametrize(("refresh_users", "exclusive"), [(1000, True), (0, True), (1000, False)])
async def test_a_new_item_reaches_the_lists_of_recent_users_between_batches(
    refresh_users: int, exclusive: bool
) -> None:
    """With no event after it, a new item's vector makes the idle work recompute the lists
    of the recently active users (``content_refresh_users``): the kitchen user's list gets
    the new kitchen item, the garden user's does not. With the setting at 0, or while other
    workers share the group's partitions, only a user's next event would."""
    store, personal, publish = await content_world(refresh_users)
    personal.owns_every_partition(exclusive)
    assert await personal.idle(store) is None  # caught up, nothing new: no work
    await publish()
    writes = await personal.idle(store)
    assert (writes is not None) is (refresh_users > 0 and exclusive)
    if writes is not None:
        await store.apply(writes)
    kitchen, garden = await listed(store, "u0"), await listed(store, "u1")
    assert ("k-new" in kitchen[:10]) is (refresh_users > 0 and exclusive)
    assert "k-new" not in garden[:10]
    assert await store.zrange(KEYS.foryou_pending(), 0, -1) == []
    assert personal.content_queue == {}


async def test_a_forgotten_user_gets_no_list_back_when_a_new_item_arrives() -> None:
    """A user forgotten after their events leaves the recently active users: the new item
    refreshes the other kitchen user's list and writes none for the forgotten one."""
    store, personal, publish = await content_world()
    personal.owns_every_partition(True)
    await run(personal, store, [ev(90, "forget", "u0")])
    assert await store.get(KEYS.foryou("u0")) is None
    await publish()
    writes = await personal.idle(store)
    assert writes is not None
    await store.apply(writes)
    assert await store.get(KEYS.foryou("u0")) is None
    assert "k-new" in (await listed(store, "u2"))[:10]


async def test_lists_left_waiting_by_a_batch_are_recomputed_between_batches() -> None:
    """A full batch leaves lists waiting (its take stopped at the cap, so more may follow);
    when no batch follows, the idle work recomputes them and takes them off the waiting list
    in Redis. Not while the last batch saw messages behind it: the next batch comes."""
    store = store_at(T0_MS)
    handler = PersonalHandler(settings(batch_size=3, foryou_batch_budget_ms=1e-6), KEYS)
    handler.owns_every_partition(True)
    await run(handler, store, [ev(n, "click", u, f"i{n}") for n, u in enumerate("abc", 1)])
    assert [m for m, _ in await store.zrange(KEYS.foryou_pending(), 0, -1)] == [b"b", b"c"]
    assert await store.get(KEYS.foryou("c")) is None
    handler.backlog(1)
    assert await handler.idle(store) is None
    handler.backlog(0)
    writes = await handler.idle(store)
    assert writes is not None
    await store.apply(writes)
    assert await store.zrange(KEYS.foryou_pending(), 0, -1) == []
    assert all([await store.get(KEYS.foryou(u)) is not None for u in "abc"])
    assert await handler.idle(store) is None


async def test_behind_a_backlog_a_lone_worker_computes_lists_while_redis_applies_the_batch():
    """Behind a backlog, a worker holding every partition plans a batch without its lists
    (its users wait in Redis); ``meanwhile`` computes them, within the budget, with their
    users' removal from the waiting list: the writes that follow the committed batch."""
    store = store_at(T0_MS)
    # A budget no list takes: every deferred list is computed, however slow the machine.
    handler = PersonalHandler(settings(foryou_batch_budget_ms=60_000), KEYS)
    handler.owns_every_partition(True)
    handler.backlog(5)
    batch = [ev(1, "click", "a", "i1"), ev(2, "click", "b", "i2"), ev(3, "click", "b", "i1")]
    records = [record for value in batch for record in handler.decode(orjson.dumps(value))[0]]
    writes = await handler.plan(store, records)
    assert not [op for op in writes.ops if op[0] == "set" and "foryou" in op[1]]
    await store.apply(writes)
    pending = [m for m, _ in await store.zrange(KEYS.foryou_pending(), 0, -1)]
    assert sorted(pending) == [b"a", b"b"]
    follow_up = handler.meanwhile()
    handler.committed()
    assert follow_up is not None
    assert sorted(op[1] for op in follow_up.ops if op[0] == "set") == [
        KEYS.foryou("a"),
        KEYS.foryou("b"),
    ]
    await store.apply(follow_up)
    assert await store.zrange(KEYS.foryou_pending(), 0, -1) == []
    assert handler.meanwhile() is None
    assert not handler.pending
    # Not holding every partition: the lists go in the batch itself, as before.
    shared = PersonalHandler(settings(foryou_batch_budget_ms=60_000), KEYS)
    shared.backlog(5)
    other = store_at(T0_MS)
    writes = await shared.plan(other, records)
    assert [op[1] for op in writes.ops if op[0] == "set" and "foryou" in op[1]]
    assert shared.meanwhile() is None


async def test_users_waiting_in_memory_are_those_waiting_in_redis_after_every_batch() -> None:
    """Behind a backlog with a budget of one list per group of users, batch after batch: the
    users the handler holds as waiting are exactly those Redis holds (what a restarted
    worker takes over), once each batch and the writes that follow it are applied."""
    store = store_at(T0_MS)
    handler = PersonalHandler(settings(foryou_batch_budget_ms=1e-6), KEYS)
    handler.owns_every_partition(True)
    handler.backlog(5)
    n = 0
    for users in ("abc", "cde", "afg", "h"):
        batch = []
        for user in users:
            n += 1
            batch.append(ev(n, "click", user, f"i{n % 4}"))
        await run(handler, store, batch)
        waiting = {m.decode() for m, _ in await store.zrange(KEYS.foryou_pending(), 0, -1)}
        assert waiting == set(handler.pending)
        assert waiting


async def test_lists_are_held_to_the_budget_while_messages_wait_behind_a_small_batch() -> None:
    """A batch smaller than the batch size gets every list when nothing waits behind it, and
    only what the budget allows (one per call here) when the consumer saw messages waiting:
    ingestion goes first, the others wait in Redis for a later batch. Once caught up, those
    waiting get the budget of each batch and the idle work, never hold a batch back."""
    tight = settings(batch_size=100, foryou_batch_budget_ms=1e-6)
    batch = [ev(1, "click", "a", "i1"), ev(2, "click", "b", "i2"), ev(3, "click", "c", "i3")]
    caught_up, behind = store_at(T0_MS), store_at(T0_MS)
    await run(PersonalHandler(tight, KEYS), caught_up, batch)
    assert await caught_up.zrange(KEYS.foryou_pending(), 0, -1) == []
    assert all([await caught_up.get(KEYS.foryou(u)) is not None for u in "abc"])
    handler = PersonalHandler(tight, KEYS)
    handler.backlog(1)
    await run(handler, behind, batch)
    assert await behind.get(KEYS.foryou("a")) is not None
    assert [m for m, _ in await behind.zrange(KEYS.foryou_pending(), 0, -1)] == [b"b", b"c"]
    handler.backlog(0)
    await run(handler, behind, [ev(4, "click", "d", "i1")])
    assert await behind.zrange(KEYS.foryou_pending(), 0, -1) == []
    assert all([await behind.get(KEYS.foryou(u)) is not None for u in "bcd"])


async def test_caught_up_a_lone_worker_is_not_held_back_by_the_lists_left_waiting() -> None:
    """The batch that ends a backlog: a worker holding every partition gives its own users
    their lists in full, however many, and those earlier batches left waiting only the
    budget (one here); its idle work recomputes the rest."""
    store = store_at(T0_MS)
    handler = PersonalHandler(settings(batch_size=100, foryou_batch_budget_ms=1e-6), KEYS)
    handler.owns_every_partition(True)
    handler.backlog(1)
    await run(handler, store, [ev(n, "click", u, f"i{n}") for n, u in enumerate("abc", 1)])
    assert [m for m, _ in await store.zrange(KEYS.foryou_pending(), 0, -1)] == [b"b", b"c"]
    handler.backlog(0)
    await run(handler, store, [ev(4, "click", "d", "i1"), ev(5, "click", "e", "i2")])
    assert all([await store.get(KEYS.foryou(u)) is not None for u in "bde"])
    assert await store.get(KEYS.foryou("c")) is None
    assert [m for m, _ in await store.zrange(KEYS.foryou_pending(), 0, -1)] == [b"c"]
    writes = await handler.idle(store)
    assert writes is not None
    await store.apply(writes)
    assert await store.zrange(KEYS.foryou_pending(), 0, -1) == []
    assert await store.get(KEYS.foryou("c")) is not None


async def test_under_a_full_budget_a_newcomer_gets_a_list_before_waiting_refreshes() -> None:
    """With the budget spent after one list per group, a user with no list (served trending
    meanwhile) gets theirs ahead of the refreshes that wait; the refreshes still get one."""
    store = store_at(T0_MS)
    tight = settings(batch_size=3, foryou_batch_budget_ms=1e-6)
    handler = PersonalHandler(tight, KEYS)
    await run(
        handler,
        store,
        [ev(1, "click", "a", "i1"), ev(2, "click", "b", "i2"), ev(3, "click", "c", "i3")],
    )
    # One list per batch under this budget (at least one per call): b and c wait.
    assert await store.get(KEYS.foryou("a")) is not None
    assert [m for m, _ in await store.zrange(KEYS.foryou_pending(), 0, -1)] == [b"b", b"c"]
    await run(
        handler,
        store,
        [ev(4, "click", "b", "i1"), ev(5, "click", "c", "i1"), ev(6, "click", "z", "i2")],
    )
    # The newcomer z first; the refreshes' half of the budget still serves the longest waiting.
    assert await store.get(KEYS.foryou("z")) is not None
    assert await store.get(KEYS.foryou("b")) is not None
    assert await store.get(KEYS.foryou("c")) is None
    assert [m for m, _ in await store.zrange(KEYS.foryou_pending(), 0, -1)] == [b"c"]


async def test_a_start_behind_a_backlog_reads_only_the_head_of_a_long_waiting_line() -> None:
    """5,000 users wait in Redis when a lone worker starts behind a backlog: its first batch
    reads the head of the line (more than its budget gets through), not every waiting user;
    the lists stop at the first user not read, and the rest keep waiting for later batches
    (the old handler read all 5,000 before its first list)."""
    store = store_at(T0_MS)
    waiting = {f"w{i:04d}": float(i) for i in range(5000)}
    await store.apply(Writes().zadd(KEYS.foryou_pending(), waiting))
    handler = PersonalHandler(settings(foryou_batch_budget_ms=60_000), KEYS)
    handler.owns_every_partition(True)
    handler.backlog(5)
    await run(handler, store, [ev(1, "click", "a", "i1"), ev(2, "click", "b", "i2")])
    assert len(handler.users_loaded) <= LOADED_AHEAD + 2
    still = [m.decode() for m, _ in await store.zrange(KEYS.foryou_pending(), 0, -1)]
    # The head read past the batch's own users (the newcomers a and b, first in line).
    assert still == [f"w{i:04d}" for i in range(LOADED_AHEAD, 5000)]
    assert await store.get(KEYS.foryou("a")) is not None
    assert set(still) == set(handler.pending)


async def test_newcomers_left_over_do_not_keep_the_users_taken_over_from_being_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The head of the line read before a batch's lists skips the batch's own users: with
    more newcomers left over than the head holds, the users a start took over from Redis
    still get the refreshes' share of the budget (one list here), not none."""
    monkeypatch.setattr(agent, "LOADED_AHEAD", 4)
    store = store_at(T0_MS)
    await store.apply(Writes().zadd(KEYS.foryou_pending(), {f"s{i:02d}": i for i in range(20)}))
    handler = PersonalHandler(settings(batch_size=100, foryou_batch_budget_ms=1e-6), KEYS)
    handler.owns_every_partition(True)
    handler.backlog(5)
    await run(handler, store, [ev(n, "click", f"n{n:02d}", f"i{n % 3}") for n in range(12)])
    waiting = [m.decode() for m, _ in await store.zrange(KEYS.foryou_pending(), 0, -1)]
    assert "s00" not in waiting and await store.get(KEYS.foryou("s00")) is not None
    assert "n00" not in waiting and "n01" in waiting
    assert set(waiting) == set(handler.pending)
