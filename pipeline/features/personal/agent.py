"""Agent group ``personal``: history, related items and the for-you model, per event.

The worker keeps an :class:`~pipeline.features.personal.engine.Engine` in memory as a cache
of Redis: item state (factors, co-occurrence, popularity) is loaded once at start, a user's
state when the user first appears in a batch. Each batch is learned by the engine and
everything it touched is written back in the batch's fenced transaction (``state.py``).

For-you lists are recomputed within a time budget per batch (``foryou_batch_budget_ms``)
while messages wait behind it (or the batch is full): first the batch's users who have no
list yet (they see trending until they get one), then, first come first served, users left
over by earlier batches, then the other users of the batch. Caught up, there is no limit,
except for a lone worker's users left over by earlier batches: they get the budget, and its
idle work recomputes the rest between batches. Users still waiting are recorded in Redis
(``{p}:foryou:pending``) in the same transaction, so a restarted worker carries on with
them. Under a load the budget cannot follow, lists lag behind learning instead of slowing
it down. A lone worker computes a budgeted batch's lists while Redis applies the batch
(``meanwhile``); the loop writes them right after it, while the batch's fences hold.

If a transaction does not commit, the in-memory engine may hold learning that Redis does
not: the handler then drops the engine and reloads it from Redis before the next batch.

Several workers (partitions split between them) stay exact. Item rows are written as
deltas and the batch's items are read again before each batch (``state.py``). A user's
state is one worker's (events are keyed by user), except across logins: the anonymous id
may live on another worker's partition. So for every batch the handler reads again, under
WATCH, the alias of each of its users (a login on another worker moves them), every
``previous_user_id`` of a login (merged from what Redis holds), and every user that other
workers may write: alias targets and users with merged ids. A concurrent write to any of
them makes the transaction start again from Redis, so no update is lost or counted twice.

A ``forget`` event erases its user in the engine at its place in the batch (timestamp
order), and the batch's writes start with the deletes of every key of the user (history,
factors, list, aliases; ``Engine.forget``, ``state.forget_writes``) and the user's removal
from the waiting lists, all in the batch's one transaction (docs/privacy.md).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from functools import partial
from itertools import islice

from pipeline.core.events import Event
from pipeline.core.keys import Keys
from pipeline.core.settings import Settings
from pipeline.features.content.state import all_vectors, changed_vectors
from pipeline.features.personal import state
from pipeline.features.personal.config import personal_config
from pipeline.features.personal.engine import Engine
from pipeline.features.personal.recent import RecentUsers
from pipeline.features.personal.waiting import WaitingLine
from pipeline.features.personal.warm import load_kernels
from pipeline.store.base import Store, Writes
from pipeline.stream.handler import EventHandler

log = logging.getLogger(__name__)

# Waiting users a starting worker takes over from Redis at most.
MAX_PENDING_LOADED = 100_000
# Longest the idle work (between batches) spends on lists per call: a batch that arrives
# meanwhile waits at most about this long.
IDLE_BUDGET_S = 0.25
# Users the idle work reads from Redis at once (those the cache let go), within its budget.
IDLE_CHUNK = 64
# Head of the waiting line read from Redis before a batch's lists when the users a start
# took over are not in memory yet: more than a batch's budget gets through.
LOADED_AHEAD = 1024


class PersonalHandler(EventHandler):
    name = "personal"

    def __init__(self, settings: Settings, keys: Keys) -> None:
        super().__init__(settings, keys)
        self.settings = settings
        self.budget_s = settings.foryou_batch_budget_ms / 1000.0
        # True while this worker holds every partition of the group (the usual single
        # worker): nobody else writes its users or items, so the re-reads and WATCHes that
        # keep several workers exact are skipped. False (exact for any number) until told.
        self.exclusive = False
        # Messages waiting behind the current batch (``backlog``): 0 until told.
        self.waiting = 0
        # Seconds for "ask the catalog again" (replaceable in tests).
        self.clock: Callable[[], float] = time.monotonic
        self.reset()

    def owns_every_partition(self, exclusive: bool) -> None:
        self.exclusive = exclusive

    def backlog(self, waiting: int) -> None:
        self.waiting = waiting

    def warm(self) -> None:
        load_kernels(self.engine.config)

    def reset(self) -> None:
        """Forget everything cached; the next batch reloads from Redis."""
        self.engine = Engine(personal_config(self.settings))
        self.items_loaded = False
        # Users in memory, oldest loaded first.
        self.users_loaded: dict[str, None] = {}
        # Users whose lists wait for a recompute, in the order they will get one.
        self.pending = WaitingLine()
        self.uncommitted = False
        # The content version whose item vectors the engine holds.
        self.content_version = 0
        # With content on: the users of recent batches (at most ``content_refresh_users``),
        # whose lists are queued in ``content_queue`` when items join from their text; the
        # idle work (only) recomputes them, so a batch never waits for them.
        on = self.engine.config.content_on
        self.recent = RecentUsers(
            self.settings.content_refresh_users if on else 0, self.settings.user_ttl_s * 1000
        )
        self.content_queue: dict[str, None] = {}
        # The newcomers whose lists ``meanwhile`` computes first, before the waiting line's
        # (None: it has nothing to do).
        self.deferred: list[str] | None = None

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
            await self._load_items(store)
        else:
            if not self.exclusive:
                items = state.batch_items(records)
                await state.refresh_items(store, self.keys, self.engine, items)
            await self._load_content(store)
        if self._new_items_matter():
            # Items first met in this batch, or whose catalog record was missing a minute ago.
            now_s = self.clock()
            untold = self.engine.created.untold(state.batch_items(records), now_s)
            await state.read_created(store, self.keys, self.engine, untold, now_s)
        await self._load_users(store, records)
        # Users with no state before this batch (no history, no factors: impressions alone
        # give factors) have no list yet: the reader serves them trending until they get one.
        engine = self.engine
        listless = {e.user_id for e in records} - engine.histories.keys()
        listless -= engine.model.user_factors.keys()
        self.uncommitted = True
        changes = self.engine.learn_batch(records)
        writes = state.changes_writes(self.engine, changes, self.keys, self.settings.user_ttl_s)
        # Newcomers first (half the budget at most), then first come, first served: users left
        # over by earlier batches, then this batch's in the order of their events. Under any
        # load the budget can follow, every list is refreshed within a few batches; with half
        # the budget kept for refreshes, none waits behind an endless stream of newcomers.
        touched = changes.users - changes.removed_users
        # Users whose list must not come back: merged into another at login, or forgotten
        # with no event after the forget.
        gone = changes.removed_users | (changes.forgotten - changes.users)
        arrivals = dict.fromkeys(e.user_id for e in sorted(records, key=lambda e: e.timestamp_ms))
        # A user's first list comes before refreshes: without one they see trending only.
        first = [user for user in arrivals if user in listless and user in touched]
        self.recent.note(
            ((e.user_id, e.timestamp_ms) for e in records if e.user_id in touched), gone
        )
        added = self.pending.enqueue(first, touched, arrivals, gone)
        # Lists are held to the budget while messages wait behind this batch (as the
        # consumer's fetches saw them) or the batch is full. Any wait counts: with a tenth of
        # a batch as the threshold, a worker near its limit spent its time on refreshes and
        # fell behind for good (docs/performance.md). Caught up, a lone worker gives the
        # batch's own users theirs in full and those earlier batches left waiting the budget
        # (its idle work does the rest): the batch that ends a backlog is not held back by
        # them all. Several workers have no idle work: caught up, they do every list.
        behind = self.waiting > 0 or len(records) >= self.settings.batch_size
        limited = behind and self.budget_s > 0
        budget_s = self.budget_s if limited or self.exclusive else 0.0
        # Waiting users a start took over are read as their lists come up: all of them when
        # every list is due now, else the head of the line past the batch's own (read).
        due = self.pending if not budget_s else self.pending.head(LOADED_AHEAD, touched)
        await self._load(store, [user for user in [*added, *due] if user not in self.users_loaded])
        done: list[str] = []
        if limited and self.exclusive:
            # Computed by ``meanwhile`` while Redis applies this batch, written right after
            # it under its fences; until then the users wait in Redis, as the others left.
            self.deferred = first
        elif limited or not self.exclusive:
            done = self._lists(writes, first, budget_s)
        else:
            done = first + sorted(touched.difference(first))
            self._write_lists(writes, done, 0.0)
            for user in done:
                self.pending.discard(user)
            done += self._lists(writes, [], budget_s)
        writes.zrem(self.keys.foryou_pending(), sorted({*done, *gone}))
        now_ms = int(time.time() * 1000)
        fresh = [user for user in added if user in self.pending]
        writes.zadd(self.keys.foryou_pending(), dict.fromkeys(fresh, now_ms))
        for user in {*done, *gone}:
            self.content_queue.pop(user, None)
        return writes

    def meanwhile(self) -> Writes | None:
        """While Redis applies a batch planned behind a backlog: the lists ``plan`` left to
        do, within the batch budget, with their users' removal from the waiting lists; the
        loop writes them once the batch has committed, under its fences. A batch that does
        not commit, or whose fences moved, resets the handler: its users still wait."""
        if self.deferred is None:
            return None
        first, self.deferred = self.deferred, None
        writes = Writes()
        done = self._lists(writes, first, self.budget_s)
        writes.zrem(self.keys.foryou_pending(), done)
        for user in done:
            self.content_queue.pop(user, None)
        return writes

    def _lists(self, writes: Writes, first: list[str], budget_s: float) -> list[str]:
        """``WaitingLine.serve``: newcomers ``first``, then the line, for ``budget_s``."""
        loaded = self.users_loaded.__contains__
        return self.pending.serve(partial(self._write_lists, writes), first, budget_s, loaded)

    def _write_lists(self, writes: Writes, users: list[str], budget_s: float) -> list[str]:
        """The lists of ``users`` into ``writes``, in order, for ``budget_s`` (0: no limit);
        returns the users left to do (``state.foryou_writes``)."""
        return state.foryou_writes(
            writes,
            self.engine,
            self.keys,
            users,
            self.settings.user_ttl_s,
            self.settings.foryou_size,
            budget_s,
        )

    def _new_items_matter(self) -> bool:
        """Whether the lists use items' creation times (``new_item_weight``, content)."""
        return self.settings.new_item_weight > 0 or self.engine.config.content_on

    async def _load_items(self, store: Store) -> None:
        await state.load_items(store, self.keys, self.engine, int(time.time() * 1000))
        if self._new_items_matter():
            await state.read_created(
                store, self.keys, self.engine, list(self.engine.model.item_ids), self.clock()
            )
        self.pending = WaitingLine(await state.load_pending(store, self.keys, MAX_PENDING_LOADED))
        if self.engine.config.content_on:
            vectors, self.content_version = await all_vectors(
                store, self.keys, self.settings.content_dim
            )
            await self._set_content(store, vectors)
        self.items_loaded = True
        log.info(
            "personal: loaded %d items (%d with content vectors) and %d waiting lists from Redis",
            len(self.engine.model.item_ids),
            len(self.engine.taste),
            len(self.pending),
        )

    async def _load_content(self, store: Store) -> None:
        """The item vectors the content agent changed since the engine last looked: new
        items join the factor model from their content neighbours (``content.py``)."""
        if not self.engine.config.content_on:
            return
        vectors, self.content_version = await changed_vectors(
            store, self.keys, self.settings.content_dim, self.content_version
        )
        if vectors and await self._set_content(store, vectors) and self.exclusive:
            # Items joined: the recently active users' lists are queued for the idle work
            # (most recent first), so the new items reach them before their next event.
            # Only while this worker holds every partition: with several workers, a user
            # seen here may have been merged or forgotten by another since.
            for user in self.recent.active(self.engine.now_ms):
                self.content_queue.setdefault(user, None)

    async def _set_content(self, store: Store, vectors: dict) -> list[str]:
        """Vectors into the engine, with the items' creation times read again from the
        catalog (a changed record may carry another ``created_at``); returns the items that
        joined the factor model."""
        added = self.engine.set_content(vectors)
        await state.read_created(store, self.keys, self.engine, sorted(vectors), self.clock())
        return added

    async def idle(self, store: Store) -> Writes | None:
        """Between batches (the worker is caught up): item vectors that arrived since the
        last batch join (which queues the recently active users' lists), then the lists a
        batch left waiting and those queued are recomputed, for at most ``IDLE_BUDGET_S``.
        Only while this worker holds every partition of the group (with several, a user's
        state may have moved to another since it was cached here), and only after a first
        batch since a (re)start (the engine is loaded), and not while the last batch saw
        messages behind it: the next batch comes at once, and ingestion goes first."""
        if not (self.exclusive and self.items_loaded) or self.uncommitted or self.waiting > 0:
            return None
        engine = self.engine
        await self._load_content(store)
        queue = list(self.pending) + [u for u in self.content_queue if u not in self.pending]
        if not queue or self.engine is not engine:
            return None
        writes = Writes()
        started = time.perf_counter()
        done: list[str] = []
        for at in range(0, len(queue), IDLE_CHUNK):
            remaining = IDLE_BUDGET_S - (time.perf_counter() - started)
            if remaining <= 0:
                break
            chunk = queue[at : at + IDLE_CHUNK]
            missing = [user for user in chunk if user not in self.users_loaded]
            await state.load_users(store, self.keys, engine, missing)
            if self.engine is not engine:
                return None  # reset meanwhile: what was read belongs to no engine now
            self.users_loaded.update(dict.fromkeys(missing))
            # A queued user whose data expired meanwhile gets no list back.
            users = [user for user in chunk if user in self.pending or engine.has_user(user)]
            left = set(self._write_lists(writes, users, remaining))
            done += [user for user in chunk if user not in left]
            if left:
                break
        writes.zrem(self.keys.foryou_pending(), [user for user in done if user in self.pending])
        for user in done:
            self.pending.discard(user)
            self.content_queue.pop(user, None)
        self._trim_cache(set())
        return writes

    def _has_merged(self, user: str) -> bool:
        history = self.engine.histories.get(user)
        return history is not None and bool(history.merged)

    async def _load(self, store: Store, users: list[str]) -> set[str]:
        # Watched from before the read: a user may be another worker's to write too (an
        # alias target, whether or not this worker knew it when the user was cached).
        if not self.exclusive:
            await store.watch(self._user_keys(users))
        aliased = await state.load_users(store, self.keys, self.engine, users)
        self.users_loaded.update(dict.fromkeys(users))
        return aliased

    def _user_keys(self, users: Iterable[str]) -> list[str]:
        keys = self.keys
        return [
            key
            for user in users
            for key in (keys.user_history(user), keys.user_factors(user), keys.user_alias(user))
        ]

    async def _reload(self, store: Store, users: set[str]) -> None:
        """Read ``users`` again from Redis, watched: another worker may write them."""
        ordered = sorted(users)
        for user in ordered:
            self.engine.evict_user(user)
            self.users_loaded.pop(user, None)
        await self._load(store, ordered)

    async def _load_users(self, store: Store, records: list[Event]) -> None:
        engine = self.engine
        own = {e.user_id for e in records}
        previous = {e.previous_user_id for e in records if e.previous_user_id}
        wanted = own | previous
        if self.exclusive:
            # Every user and alias is this worker's: what it holds in memory is current.
            await self._load(store, [user for user in wanted if user not in self.users_loaded])
            targets = {engine.aliases[user] for user in wanted if user in engine.aliases}
            await self._load(store, [user for user in targets if user not in self.users_loaded])
            self._trim_cache(wanted | targets)
            return
        # A login on another worker may alias any of the batch's users until this batch
        # commits (and may have aliased a cached one since it was loaded).
        await store.watch([self.keys.user_alias(user) for user in sorted(own)])
        cached = sorted(user for user in own if user in self.users_loaded)
        stored = await store.mget([self.keys.user_alias(user) for user in cached])
        moved = {
            user
            for user, alias in zip(cached, stored, strict=True)
            if (alias.decode() if alias is not None else None) != engine.aliases.get(user)
        }
        # Users other workers may write: ids merged at a login here (their state may be
        # another worker's), and users with merged ids (another worker applies the late
        # events of those ids to them).
        shared = previous | moved
        shared |= {user for user in cached if self._has_merged(user)}
        await self._load(
            store, [user for user in wanted if user not in self.users_loaded and user not in shared]
        )
        await self._reload(store, shared)
        # Events of an aliased id go to the user it became, whose own events may be another
        # worker's (the anonymous id partitions elsewhere): that user is read from Redis for
        # every such batch, so a copy cached here never overwrites what the other worker
        # wrote since, nor brings back what a forget erased. It must not be evicted below.
        targets = {engine.aliases[user] for user in wanted if user in engine.aliases}
        await self._reload(store, targets - shared)
        self._trim_cache(wanted | targets)

    def _trim_cache(self, wanted: set[str]) -> None:
        """Bounded memory: forget the users loaded longest ago; Redis still has them."""
        excess = len(self.users_loaded) - self.settings.max_cached_users
        if excess > 0:
            for user_id in list(islice(self.users_loaded, excess)):
                if user_id not in wanted and user_id not in self.pending:
                    del self.users_loaded[user_id]
                    self.engine.evict_user(user_id)
