"""The content handler's plan and the similar-items read, on the in-memory store: vectors,
document frequencies and neighbour lists in Redis's shape, reloads, and what readers see."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.features.catalog.agent import CatalogHandler
from pipeline.features.catalog.read import Availability
from pipeline.features.content.agent import ContentHandler
from pipeline.features.content.model import unpack
from pipeline.features.content.read import SIMILAR_CONTENT, read_similar
from pipeline.features.content.state import DOCUMENTS
from pipeline.features.related.read import read_related
from pipeline.store.base import Writes
from pipeline.store.memory import MemoryStore
from tests.unit.features.helpers import KEYS, run, settings

pytestmark = pytest.mark.asyncio

ITEMS = [
    {"item_id": "shoes/red-1", "title": "Red leather running shoe"},
    {"item_id": "hat-1", "title": "Blue wool hat", "attributes": {"description": "warm winter"}},
    {"item_id": "scarf-1", "title": "Wool scarf", "attributes": {"description": "warm"}},
    {"item_id": "nothing", "price": 3},
]


def handler(**overrides: object) -> ContentHandler:
    return ContentHandler(settings(content_neighbours=3, **overrides), KEYS)


async def similar(store: MemoryStore, item_id: str, n: int = 10) -> list[str]:
    found = await read_similar(store, KEYS, Availability(KEYS), item_id, n, 20)
    return [entry["item_id"] for entry in found]


async def test_items_get_vectors_and_lists_in_redis() -> None:
    store = MemoryStore()
    await run(handler(), store, ITEMS)
    members = await store.smembers(KEYS.content_items())
    assert members == {b"shoes/red-1", b"hat-1", b"scarf-1"}
    raw = await store.get(KEYS.content_vector("hat-1"))
    assert raw is not None and len(raw) == 4 * 256
    vector = unpack(raw, 256)
    assert vector is not None and np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-6)
    df = await store.hgetall(KEYS.content_df())
    assert float(df[DOCUMENTS.encode()]) == 3
    assert await similar(store, "hat-1") == ["scarf-1"]
    assert await store.get(KEYS.content_version()) == b"1"


async def test_a_new_item_lists_the_item_with_the_closest_title_before_any_event() -> None:
    store = MemoryStore()
    await run(handler(), store, ITEMS)
    await run(handler(), store, [{"item_id": "shoes/red-2", "title": "Running shoe, red"}])
    found = await read_similar(store, KEYS, Availability(KEYS), "shoes/red-2", 5, 20)
    assert found[0]["item_id"] == "shoes/red-1"
    assert found[0]["source"] == {
        "model": "content",
        "relation": SIMILAR_CONTENT,
        "source_items": ["shoes/red-2"],
    }
    assert 0 < found[0]["score"] <= 1
    # The older item took the newcomer into its own list.
    assert await similar(store, "shoes/red-1") == ["shoes/red-2"]
    # Related items serve the relation through the same read.
    related = await read_related(
        store, KEYS, Availability(KEYS), "shoes/red-1", SIMILAR_CONTENT, 5, 200, 0.4
    )
    assert [entry["item_id"] for entry in related] == ["shoes/red-2"]


async def test_unavailable_items_are_left_out_of_reads_and_lists() -> None:
    store = MemoryStore()
    content = handler()
    await run(content, store, ITEMS)
    # The catalog marks it unavailable: readers hide it at once.
    await run(CatalogHandler(KEYS), store, [{**ITEMS[2], "available": False}])
    assert await similar(store, "hat-1") == []
    # The content agent reads the same record: the item leaves the lists and Redis.
    await run(content, store, [{**ITEMS[2], "available": False}])
    assert await store.zrange(KEYS.content_similar("hat-1"), 0, -1) == []
    assert await store.get(KEYS.content_vector("scarf-1")) is None
    assert b"scarf-1" not in await store.smembers(KEYS.content_items())
    assert await store.zrange(KEYS.content_similar("scarf-1"), 0, -1) == []


async def test_a_restarted_worker_continues_from_redis() -> None:
    store = MemoryStore()
    await run(handler(), store, ITEMS)
    first = await store.hgetall(KEYS.content_df())
    later = [{"item_id": "scarf-2", "title": "Warm wool scarf"}]
    # One worker that never stopped, and one that starts from Redis, end alike.
    other = MemoryStore()
    still = handler()
    await run(still, other, ITEMS)
    await run(still, other, later)
    await run(handler(), store, later)
    assert await store.hgetall(KEYS.content_df()) == await other.hgetall(KEYS.content_df())
    assert first != await store.hgetall(KEYS.content_df())
    for item_id in ("hat-1", "scarf-1", "scarf-2"):
        assert await store.zrange(KEYS.content_similar(item_id), 0, -1) == await other.zrange(
            KEYS.content_similar(item_id), 0, -1
        )


async def test_another_workers_batch_and_an_aborted_plan_make_it_reload() -> None:
    store = MemoryStore()
    mine, theirs = handler(), handler()
    await run(mine, store, ITEMS[:1])
    await run(theirs, store, [{"item_id": "shoes/red-2", "title": "red running shoe"}])
    # Mine had not seen shoes/red-2: it reloads because the version moved.
    await run(mine, store, [{"item_id": "shoes/red-3", "title": "red leather shoe"}])
    assert set(await similar(store, "shoes/red-3")) == {"shoes/red-1", "shoes/red-2"}
    # A plan whose writes never reach the store is forgotten.
    await mine.plan(store, [])
    mine.aborted()
    assert mine.engine is None
    await run(mine, store, [{"item_id": "shoes/red-4", "title": "red shoe"}])
    assert len(await similar(store, "shoes/red-4")) == 3


async def test_a_repeated_plan_does_not_count_twice() -> None:
    store = MemoryStore()
    content = handler()
    records = [content.decode(b'{"item_id": "a", "title": "red shoe"}')[0][0]]
    await content.plan(store, records)
    # The transaction was retried: the loop plans the same records again, then applies.
    await store.apply(await content.plan(store, records))
    content.committed()
    df = await store.hgetall(KEYS.content_df())
    assert float(df[DOCUMENTS.encode()]) == 1


async def test_decode_rejects_bad_records_like_the_catalog() -> None:
    content, catalog = handler(), CatalogHandler(KEYS)
    for raw in (b'{"categories": []}', b"not json", None):
        assert content.decode(raw) == catalog.decode(raw)


async def test_the_blend_of_an_item_with_few_partners_is_filled_with_its_look_alikes() -> None:
    store = MemoryStore()
    await run(handler(), store, ITEMS)

    async def blend(item_id: str, n: int) -> list[tuple[str, str]]:
        found = await read_related(store, KEYS, Availability(KEYS), item_id, None, n, 200, 0.5)
        return [(entry["item_id"], entry["source"]["model"]) for entry in found]

    # Nobody has met the hat: its related items are the items like it, marked as content.
    assert await blend("hat-1", 5) == [("scarf-1", "content")]
    # Once co-occurrence gives it a partner, that partner comes first; content fills the rest.
    await store.apply(Writes().zadd(KEYS.related("also_clicked", "hat-1"), {"shoes/red-1": 2.0}))
    assert await blend("hat-1", 5) == [("shoes/red-1", "related"), ("scarf-1", "content")]
    # A list the learned relations fill holds no content.
    assert await blend("hat-1", 1) == [("shoes/red-1", "related")]
