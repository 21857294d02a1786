"""The ranking handler's plan and ``rank_items``, on the in-memory store."""

from __future__ import annotations

import itertools
from typing import Any

import orjson
import pytest

from pipeline.core.items import Item
from pipeline.features.catalog.model import item_hash
from pipeline.features.ranking.agent import RankingHandler
from pipeline.features.ranking.config import ranking_config
from pipeline.features.ranking.read import rank_items
from pipeline.store.base import Reads, Writes
from pipeline.store.memory import MemoryStore
from tests.unit.features.helpers import KEYS, T0_MS, run, settings

pytestmark = pytest.mark.asyncio


def shown(n: int, user: str, items: list[str], **context: object) -> dict:
    return {
        "event_id": f"s{n}",
        "type": "impression",
        "user_id": user,
        "items": items,
        "timestamp": T0_MS + n,
        "context": {"device": "mobile", **context},
    }


def click_at(n: int, user: str, item: str, position: int) -> dict:
    return {
        "event_id": f"c{n}",
        "type": "click",
        "user_id": user,
        "item_id": item,
        "timestamp": T0_MS + n,
        "context": {"device": "mobile", "position": position},
    }


async def test_what_a_user_clicks_ranks_first_for_that_user() -> None:
    store = MemoryStore()
    handler = RankingHandler(settings(), KEYS)
    events: list[dict] = []
    for n in range(30):
        events.append(shown(2 * n, "u1", ["a", "b", "c"]))
        events.append(click_at(2 * n + 1, "u1", "c", 2))
    await run(handler, store, events)
    config = ranking_config(settings())
    ranked = await rank_items(
        store, KEYS, "u1", ["a", "b", "c"], {"device": "mobile"}, config, T0_MS
    )
    assert ranked[0]["item_id"] == "c"
    assert ranked[0]["score"] > 0.5 > ranked[1]["score"] >= ranked[2]["score"]
    # Another user never clicked anything: nothing personal lifts c for them as much.
    other = await rank_items(
        store, KEYS, "u2", ["a", "b", "c"], {"device": "mobile"}, config, T0_MS
    )
    assert other[0]["score"] < ranked[0]["score"]
    assert ranked[0]["source"] == {"model": "ranking"}
    # Weights are increments: a second batch adds to what the first stored.
    weights = len(await store.hgetall(KEYS.rank_weights()))
    await run(handler, store, [shown(100, "u2", ["d"])])
    assert len(await store.hgetall(KEYS.rank_weights())) > weights


async def test_events_that_teach_nothing_write_nothing() -> None:
    store = MemoryStore()
    handler = RankingHandler(settings(), KEYS)
    buy = {"event_id": "b1", "type": "buy", "user_id": "u", "item_id": "a", "timestamp": T0_MS}
    await run(handler, store, [buy])
    assert await store.scan("*") == []


@pytest.mark.parametrize("split", [1, 2, 3])
async def test_what_each_user_clicked_leads_however_the_backlogs_are_cut_into_batches(
    split: int,
) -> None:
    """Regression: a worker catching up reads one partition's backlog (one user's clicks, say)
    as a batch of its own. One averaged gradient step per batch then taught "everything in
    this batch is clicked" and ranked alice's hats first for bob. Every order of the four
    backlogs (two users, impressions and clicks), cut into two batches at ``split``."""
    items = ["a0", "a1", "a2", "a3", "a4", "a5"]
    clicked = {"alice": ["a3", "a5"], "bob": ["a0"]}
    backlogs = {}
    for user, theirs in clicked.items():
        backlogs[f"{user} shown"] = [shown(n, user, items) for n in range(20)]
        backlogs[f"{user} clicked"] = [
            click_at(n, user, item, items.index(item)) for n in range(20) for item in theirs
        ]
    config = ranking_config(settings())
    for order in itertools.permutations(backlogs):
        store = MemoryStore()
        for item in items:
            category = "shoes" if item < "a3" else "hats"
            await store.apply(Writes().hset(KEYS.item(item), item_hash(Item(item, (category,)))))
        handler = RankingHandler(settings(), KEYS)
        values = [backlogs[name] for name in order]
        await run(handler, store, sum(values[:split], []))
        await run(handler, store, sum(values[split:], []))
        for user, theirs in clicked.items():
            ranked = await rank_items(store, KEYS, user, items, {"device": "mobile"}, config, T0_MS)
            top = {entry["item_id"] for entry in ranked[: len(theirs)]}
            assert top == set(theirs), (order, user, ranked)


async def test_a_new_user_is_ranked_by_what_users_with_the_same_attributes_clicked() -> None:
    """User attributes (the users feature's records) cross with item categories: a user
    never seen before, from a country whose users pick hats, gets hats first; one from a
    country whose users pick shoes, shoes."""
    import orjson

    store = MemoryStore()
    items = ["hat-1", "hat-2", "shoe-1", "shoe-2"]
    for item in items:
        await store.apply(
            Writes().hset(KEYS.item(item), item_hash(Item(item, (item.split("-")[0],))))
        )
    picks = {"DE": "hat", "FR": "shoe"}
    for country in picks:
        for k in range(6):
            await store.apply(
                Writes().hset(
                    KEYS.user_attributes(f"{country}-{k}"), {"country": orjson.dumps(country)}
                )
            )
    events = []
    for n in range(30):
        for country, kind in picks.items():
            user = f"{country}-{n % 6}"
            # Each user clicks a different item of the kind each time: no item of its own.
            clicked = f"{kind}-{1 + n % 2}"
            events.append(shown(len(events), user, items))
            events.append(click_at(len(events), user, clicked, items.index(clicked)))
    await run(RankingHandler(settings(), KEYS), store, events)
    config = ranking_config(settings())
    for country, kind in picks.items():
        newcomer = f"new-{country}"
        await store.apply(
            Writes().hset(KEYS.user_attributes(newcomer), {"country": orjson.dumps(country)})
        )
        ranked = await rank_items(store, KEYS, newcomer, items, {"device": "mobile"}, config, T0_MS)
        assert {entry["item_id"].split("-")[0] for entry in ranked[:2]} == {kind}, ranked


async def test_user_attributes_cross_with_item_attributes_across_categories() -> None:
    """Users of one country pick one brand in every category: a user never seen before
    from that country gets that brand first in a category nobody has clicked yet (the
    categories alone tell nothing there)."""
    import orjson

    store = MemoryStore()
    brands = {"DE": "acme", "FR": "zeta"}
    known = [f"{kind}-{brand}" for kind in ("hat", "shoe") for brand in brands.values()]
    unseen = ["bag-zeta", "bag-acme"]
    for item in known + unseen:
        kind, brand = item.split("-")
        record = Item(item, (kind,), attributes={"brand": brand})
        await store.apply(Writes().hset(KEYS.item(item), item_hash(record)))
    users = {country: [f"{country}-{k}" for k in range(6)] for country in brands}
    for country, names in users.items():
        for user in [*names, f"new-{country}"]:
            await store.apply(
                Writes().hset(KEYS.user_attributes(user), {"country": orjson.dumps(country)})
            )
    events = []
    for n in range(30):
        for country, brand in brands.items():
            user = users[country][n % 6]
            clicked = f"{('hat', 'shoe')[n % 2]}-{brand}"
            events.append(shown(len(events), user, known))
            events.append(click_at(len(events), user, clicked, known.index(clicked)))
    await run(RankingHandler(settings(), KEYS), store, events)
    config = ranking_config(settings())
    for country, brand in brands.items():
        ranked = await rank_items(store, KEYS, f"new-{country}", unseen, {}, config, T0_MS)
        assert ranked[0]["item_id"] == f"bag-{brand}", ranked


def _learned_batches() -> list[list[dict]]:
    first = [shown(n, "u1", ["a", "b", "c"]) for n in range(5)] + [click_at(5, "u1", "c", 2)]
    second = [shown(10 + n, "u2", ["b", "c", "d"]) for n in range(5)] + [click_at(20, "u2", "b", 0)]
    return [first, second]


async def _tables(store: MemoryStore) -> tuple[dict, dict]:
    weights = await store.hgetall(KEYS.rank_weights())
    sums = await store.hgetall(KEYS.rank_sums())
    return (
        {int(k): float(v) for k, v in weights.items()},
        {int(k): float(v) for k, v in sums.items()},
    )


async def test_a_worker_holding_every_partition_sets_the_values_others_add_increments() -> None:
    """Alone (every partition held), the handler writes the weights and sums it changed as
    values (HSET); shared, as increments. Both leave the same tables, batch after batch."""
    stores = {}
    for exclusive in (False, True):
        store = MemoryStore()
        handler = RankingHandler(settings(), KEYS)
        handler.owns_every_partition(exclusive)
        for batch in _learned_batches():
            records = []
            for value in batch:
                decoded, _ = handler.decode(orjson.dumps(value))
                records.extend(decoded)
            writes = await handler.plan(store, records)
            kinds = {op[0] for op in writes.ops}
            assert kinds == ({"hset"} if exclusive else {"hincr_float"})
            await store.apply(writes)
            handler.committed()
        stores[exclusive] = await _tables(store)
    (shared_weights, shared_sums), (own_weights, own_sums) = stores[False], stores[True]
    assert shared_weights.keys() == own_weights.keys() and len(own_weights) > 10
    assert shared_sums.keys() == own_sums.keys()
    for index, weight in own_weights.items():
        assert weight == pytest.approx(shared_weights[index], rel=1e-12, abs=1e-15)
    for index, total in own_sums.items():
        assert total == pytest.approx(shared_sums[index], rel=1e-12, abs=1e-15)


async def test_a_write_by_another_worker_restarts_a_batch_that_sets_values() -> None:
    """A batch that sets values watches both tables from before it reads them: should another
    worker add to them meanwhile (a rebalance under way), the transaction starts again from
    what is stored then, and the other's increment is kept, not overwritten."""
    batch = _learned_batches()[0]

    async def learned(interleave: bool) -> tuple[tuple[dict, dict], int]:
        store = MemoryStore()
        handler = RankingHandler(settings(), KEYS)
        handler.owns_every_partition(True)
        # Another worker's increment to the bias, which every observation of the batch moves.
        increments = {handler.indexer.bias: 0.25}
        records = []
        for value in batch:
            decoded, _ = handler.decode(orjson.dumps(value))
            records.extend(decoded)
        if not interleave:
            await store.apply(Writes().hincr_float(KEYS.rank_weights(), increments))
        attempts = 0

        async def build(_: list) -> Writes:
            nonlocal attempts
            attempts += 1
            writes = await handler.plan(store, records)
            if interleave and attempts == 1:
                await store.apply(Writes().hincr_float(KEYS.rank_weights(), increments))
            return writes

        assert await store.transact([], build)
        return await _tables(store), attempts

    (interleaved, attempts), (before, once) = await learned(True), await learned(False)
    assert (attempts, once) == (2, 1)
    assert interleaved == before


class CountingReads(MemoryStore):
    """Counts the fields of the click model's tables every read asks for."""

    def __init__(self) -> None:
        super().__init__()
        self.fields_read = 0

    async def read(self, reads: Reads) -> list[Any]:
        tables = (KEYS.rank_weights(), KEYS.rank_sums())
        self.fields_read += sum(
            len(op[2]) for op in reads.ops if op[0] == "hmget" and op[1] in tables
        )
        return await super().read(reads)


async def test_a_lone_worker_reads_each_index_once_and_learns_what_reading_all_would() -> None:
    """Holding every partition, the handler keeps what it read and wrote: a batch reads only
    the indexes it meets for the first time, and the tables end exactly as when every batch
    reads every index (a handler that forgets after each batch). A batch that did not commit
    drops what is kept: the next one reads everything again."""
    batches = _learned_batches() * 3
    results = {}
    for keeps in (False, True):
        store = CountingReads()
        handler = RankingHandler(settings(), KEYS)
        handler.owns_every_partition(True)
        reads = []
        for batch in batches:
            before = store.fields_read
            await run(handler, store, batch)
            reads.append(store.fields_read - before)
            if not keeps:
                handler.reset()
        results[keeps] = (await _tables(store), reads)
    (tables, full), (kept_tables, kept) = results[False], results[True]
    assert kept_tables == tables
    # The first two batches meet new indexes; their repeats meet none.
    assert kept[0] == full[0] > 0 and 0 < kept[1] < full[1]
    assert kept[2:] == [0, 0, 0, 0] and min(full[2:]) > 0
    store = CountingReads()
    handler = RankingHandler(settings(), KEYS)
    handler.owns_every_partition(True)
    await run(handler, store, batches[0])
    records = [r for value in batches[0] for r in handler.decode(orjson.dumps(value))[0]]
    await handler.plan(store, records)
    handler.aborted()
    before = store.fields_read
    await run(handler, store, batches[0])
    assert store.fields_read - before == full[0]
