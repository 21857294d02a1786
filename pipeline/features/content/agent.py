"""Agent group ``content``: item texts to content vectors and content neighbours.

It reads the catalog topic. The engine (``engine.py``: every item's vector and neighbour
list, the document frequencies) is a cache of Redis: loaded when the worker starts, after
an aborted or repeated plan, after partitions were revoked, and when another worker of the
group moved ``content:version`` since this one's last batch.
"""

from __future__ import annotations

from pipeline.core.events import Rejection
from pipeline.core.items import Item, parse_item_message
from pipeline.core.keys import Keys
from pipeline.core.settings import Settings
from pipeline.features.content.config import content_config
from pipeline.features.content.engine import ContentEngine
from pipeline.features.content.state import load_engine, parse_version, update_writes
from pipeline.store.base import Store, Writes
from pipeline.stream.handler import Handler


class ContentHandler(Handler[Item]):
    """Each batch: the item versions through the engine (the latest of an item wins), the changed vectors,
    document frequencies and neighbour lists written, the version moved."""

    name = "content"
    # With the catalog: item data before the event groups of the same batch.
    phase = 0

    def __init__(self, settings: Settings, keys: Keys) -> None:
        self.keys = keys
        self.config = content_config(settings)
        self.engine: ContentEngine | None = None
        # The content version this worker's engine reflects (None: reload before planning).
        self._version: int | None = None
        self._planned: int | None = None

    def decode(self, value: bytes | None) -> tuple[list[Item], list[Rejection]]:
        item, rejection = parse_item_message(value)
        if item is not None:
            return [item], []
        assert rejection is not None
        return [], [rejection]

    async def plan(self, store: Store, records: list[Item]) -> Writes:
        # Watched: two content workers committing the same next version would tag their
        # changed items alike, and a reader of `content:changed` could miss the second.
        await store.watch([self.keys.content_version()])
        stored = parse_version(await store.get(self.keys.content_version()))
        if self.engine is None or self._version != stored:
            self.engine, stored = await load_engine(store, self.keys, self.config)
        # Until committed, the engine holds effects the store may never get.
        self._version = None
        update = self.engine.apply(records)
        self._planned = stored + 1
        writes = update_writes(self.keys, update)
        # Which vectors this version changed: readers of the vectors (the personal agent)
        # fetch only those.
        writes.zadd(self.keys.content_changed(), dict.fromkeys(update.vectors, self._planned))
        return writes.incr(self.keys.content_version())

    def committed(self) -> None:
        self._version = self._planned

    def aborted(self) -> None:
        self.engine = None
        self._version = None

    def reset(self) -> None:
        self.engine = None
        self._version = None
