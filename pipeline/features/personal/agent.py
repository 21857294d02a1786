"""Agent group ``personal``: history, related items and the for-you model, per event.

The worker keeps an :class:`~pipeline.features.personal.engine.Engine` in memory as a cache
of Redis: item state (factors, co-occurrence, popularity) is loaded once at start, a user's
state when the user first appears in a batch. Each batch is learned by the engine and
everything it touched is written back in the batch's fenced transaction (``state.py``).

If a transaction does not commit, the in-memory engine may hold learning that Redis does
not: the handler then drops the engine and reloads it from Redis before the next batch.
"""

from __future__ import annotations

import logging
import time

from pipeline.core.events import Event
from pipeline.core.keys import Keys
from pipeline.core.settings import Settings
from pipeline.features.personal import state
from pipeline.features.personal.config import personal_config
from pipeline.features.personal.engine import Engine
from pipeline.store.base import Store, Writes
from pipeline.stream.handler import EventHandler

log = logging.getLogger(__name__)


class PersonalHandler(EventHandler):
    name = "personal"

    def __init__(self, settings: Settings, keys: Keys) -> None:
        super().__init__(settings, keys)
        self.settings = settings
        self.reset()

    def reset(self) -> None:
        """Forget everything cached; the next batch reloads from Redis."""
        self.engine = Engine(personal_config(self.settings))
        self.items_loaded = False
        # Users in memory, oldest loaded first.
        self.users_loaded: dict[str, None] = {}
        self.uncommitted = False

    def committed(self) -> None:
        self.uncommitted = False

    def aborted(self) -> None:
        log.warning("personal: batch not committed; reloading state from Redis")
        self.reset()

    async def plan(self, store: Store, records: list[Event]) -> Writes:
        if self.uncommitted:
            # A retry of a batch this engine already learned: start again from Redis.
            self.reset()
        if not self.items_loaded:
            await state.load_items(store, self.keys, self.engine, int(time.time() * 1000))
            self.items_loaded = True
            log.info("personal: loaded %d items from Redis", len(self.engine.model.item_ids))
        await self._load_users(store, records)
        self.uncommitted = True
        changes = self.engine.learn_batch(records)
        return state.changes_writes(
            self.engine, changes, self.keys, self.settings.user_ttl_s, self.settings.foryou_size
        )

    async def _load_users(self, store: Store, records: list[Event]) -> None:
        engine = self.engine
        wanted = {e.user_id for e in records} | {
            e.previous_user_id for e in records if e.previous_user_id
        }
        missing = [user for user in wanted if user not in self.users_loaded]
        aliased = await state.load_users(store, self.keys, engine, missing)
        self.users_loaded.update(dict.fromkeys(missing))
        # Events of an aliased id go to the user it became: that user must be loaded too,
        # and must not be evicted below.
        targets = [user for user in aliased if user not in self.users_loaded]
        await state.load_users(store, self.keys, engine, targets)
        self.users_loaded.update(dict.fromkeys(targets))
        wanted |= {engine.aliases[user] for user in wanted if user in engine.aliases}
        # Bounded memory: forget the users loaded longest ago; Redis still has them.
        excess = len(self.users_loaded) - self.settings.max_cached_users
        if excess > 0:
            for user_id in list(self.users_loaded)[:excess]:
                if user_id not in wanted:
                    del self.users_loaded[user_id]
                    engine.forget_user(user_id)
