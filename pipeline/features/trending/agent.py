"""Agent group ``trending``: events to forward-decayed sorted sets (see model.py)."""

from __future__ import annotations

from pipeline.core.decay import expire_at_s
from pipeline.core.events import Event
from pipeline.core.keys import Keys
from pipeline.core.settings import Settings
from pipeline.features.catalog.read import CatalogCache
from pipeline.features.trending.config import trending_config
from pipeline.features.trending.model import fold
from pipeline.store.base import Store, Writes
from pipeline.stream.handler import EventHandler


class TrendingHandler(EventHandler):
    name = "trending"

    def __init__(self, settings: Settings, keys: Keys) -> None:
        super().__init__(settings, keys)
        self.config = trending_config(settings)
        self.max_items = settings.trending_max_items
        self.catalog = CatalogCache(keys)

    async def plan(self, store: Store, records: list[Event]) -> Writes:
        item_ids = sorted({event.item_id for event in records if event.item_id is not None})
        categories = await self.catalog.categories(store, item_ids)
        writes = Writes()
        windows = self.config.windows
        for (kind, window, gen, category), increments in fold(
            records, self.config, categories
        ).items():
            writes.zincr_trim(
                self.keys.trending(kind, window, gen, category),
                increments,
                self.max_items,
                expire_at_s=expire_at_s(gen, windows[window]),
            )
        return writes
