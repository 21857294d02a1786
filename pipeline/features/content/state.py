"""The content agent's state in Redis: what a worker loads and what a batch writes.

Keys (``pipeline.core.keys``): ``content:items`` (the items with a vector),
``content:vector:{item_id}`` (packed float32), ``content:df`` (document frequencies per
bucket, and ``documents``), ``content:similar:{item_id}`` (the item's neighbours) and
``content:version`` (moved by every batch) with ``content:changed`` (which items each version
changed, read by the personal agent). Nothing is pickled.
"""

from __future__ import annotations

import numpy as np

from pipeline.core.ids import decode_id
from pipeline.core.keys import Keys
from pipeline.features.content.engine import ContentConfig, ContentEngine, ContentUpdate
from pipeline.features.content.model import pack, unpack
from pipeline.store.base import Reads, Store, Writes

DOCUMENTS = "documents"


def parse_version(raw: bytes | None) -> int:
    return int(raw) if raw is not None and raw.isdigit() else 0


async def load_engine(store: Store, keys: Keys, config: ContentConfig) -> tuple[ContentEngine, int]:
    """The engine as Redis holds it, and the version it was read at. Vectors of another
    size (``content_dim`` changed) or malformed are left out."""
    reads = Reads().smembers(keys.content_items()).hgetall(keys.content_df())
    members, df_raw, version = await store.read(reads.get(keys.content_version()))
    item_ids = sorted(item_id for m in members if (item_id := decode_id(m)) is not None)
    reads = Reads()
    if item_ids:
        reads.mget([keys.content_vector(item_id) for item_id in item_ids])
    for item_id in item_ids:
        reads.zrange(keys.content_similar(item_id), 0, config.neighbours - 1, desc=True)
    rows = await store.read(reads) if item_ids else [[]]
    vectors = {}
    for item_id, raw in zip(item_ids, rows[0], strict=True):
        vector = unpack(raw, config.dim) if raw is not None else None
        if vector is not None:
            vectors[item_id] = vector
    lists = {
        item_id: [(other, score) for member, score in row if (other := decode_id(member))]
        for item_id, row in zip(item_ids, rows[1:], strict=True)
    }
    counts = []
    documents = 0.0
    for field, value in df_raw.items():
        try:
            number = float(value)
        except ValueError:
            continue
        if field == DOCUMENTS.encode():
            documents = number
        elif field.isdigit():
            counts.append((int(field), number))
    engine = ContentEngine(config)
    engine.load(vectors, lists, counts, documents)
    return engine, parse_version(version)


async def read_vectors(
    store: Store, keys: Keys, dim: int, item_ids: list[str]
) -> dict[str, np.ndarray | None]:
    """The stored vectors of ``item_ids`` (None: none stored, or not ``dim`` values)."""
    if not item_ids:
        return {}
    raws = await store.mget([keys.content_vector(item_id) for item_id in item_ids])
    return {
        item_id: unpack(raw, dim) if raw is not None else None
        for item_id, raw in zip(item_ids, raws, strict=True)
    }


async def all_vectors(
    store: Store, keys: Keys, dim: int
) -> tuple[dict[str, np.ndarray | None], int]:
    """Every stored vector, and the content version read before them (so that a change
    made meanwhile is read again by :func:`changed_vectors`)."""
    version, members = await store.read(
        Reads().get(keys.content_version()).smembers(keys.content_items())
    )
    item_ids = sorted(item_id for m in members if (item_id := decode_id(m)) is not None)
    return await read_vectors(store, keys, dim, item_ids), parse_version(version)


async def changed_vectors(
    store: Store, keys: Keys, dim: int, since: int
) -> tuple[dict[str, np.ndarray | None], int]:
    """The vectors changed after version ``since`` (None: deleted), and the version now."""
    version = parse_version(await store.get(keys.content_version()))
    if version <= since:
        return {}, since
    rows = await store.zrange_by_score(keys.content_changed(), f"({since}", "+inf")
    item_ids = sorted(item_id for m, _ in rows if (item_id := decode_id(m)) is not None)
    return await read_vectors(store, keys, dim, item_ids), version


def update_writes(keys: Keys, update: ContentUpdate) -> Writes:
    """The writes of one batch's update (the version is moved by the caller)."""
    writes = Writes()
    stored = sorted(i for i, vector in update.vectors.items() if vector is not None)
    for item_id in stored:
        vector = update.vectors[item_id]
        assert vector is not None
        writes.set(keys.content_vector(item_id), pack(vector))
    writes.sadd(keys.content_items(), stored)
    gone = sorted(i for i, vector in update.vectors.items() if vector is None)
    writes.srem(keys.content_items(), gone)
    for item_id in gone:
        writes.delete(keys.content_vector(item_id), keys.content_similar(item_id))
    deltas: dict[str | int, float] = {b: d for b, d in update.df_deltas.items() if d}
    if update.documents_delta:
        deltas[DOCUMENTS] = update.documents_delta
    writes.hincr_float(keys.content_df(), deltas)
    for item_id, entries in update.lists.items():
        key = keys.content_similar(item_id)
        writes.delete(key)
        writes.zadd(key, {other: round(score, 6) for other, score in entries})
    return writes
