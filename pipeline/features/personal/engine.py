"""The personal engine: learns every event into the user's history, the factor model,
related-item co-occurrence and cold-start popularity, and records what it touched.

The personal agent and ``pipeline evaluate`` run this same class: the agent loads state
from Redis into it (``state.py``), calls :meth:`Engine.learn` for each fresh event and writes
what :meth:`Engine.drain_changes` reports; the evaluation replays a log through it in memory,
asking for recommendations (``recommend.py``) before each event is learned.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.core.decay import DecayedCounts
from pipeline.core.events import FORGET, Event
from pipeline.core.feedback import CLICK, Feedback
from pipeline.core.items import new_item_window
from pipeline.features.personal.changes import Changes
from pipeline.features.personal.content import ContentTaste
from pipeline.features.personal.created import CreationTimes
from pipeline.features.personal.freshness import FreshnessPrior
from pipeline.features.personal.history import LOW_RATING, HistoryLimits, UserHistory
from pipeline.features.personal.mf import FactorConfig
from pipeline.features.personal.neighbours import NeighbourIndex
from pipeline.features.personal.recommend import BlendConfig, Recommendation, Recommender
from pipeline.features.personal.words import WordFactors
from pipeline.features.related.model import (
    CoOccurrence,
    RelatedConfig,
    merge_pairs,
)


@dataclass(frozen=True, slots=True)
class PersonalConfig:
    """Everything the engine learns and blends with; built by ``config.personal_config``."""

    mf: FactorConfig
    blend: BlendConfig
    history: HistoryLimits
    related: RelatedConfig
    feedback: Feedback
    # Size of the content vectors (settings ``content_dim``); others are ignored.
    content_dim: int
    # Learning rate of the words' factors (``words.py``; settings ``content_factor_rate``;
    # 0: items' words are not in the factor model).
    content_factor_rate: float = 0.0
    # Learning rate of the freshness prior (``freshness.py``; settings ``freshness_rate``;
    # 0: off).
    freshness_rate: float = 0.0

    @property
    def content_on(self) -> bool:
        """Whether the engine takes content vectors: a content taste weight or a content
        factor rate above 0."""
        return self.blend.content_taste_weight > 0 or self.content_factor_rate > 0


class Engine:
    """Every personal model of one worker (or of one evaluation), in memory."""

    def __init__(self, config: PersonalConfig, pair_writes: bool = True) -> None:
        """``pair_writes=False``: the drained changes leave out the pair counts (nothing
        writes them: an evaluation), which are then not summed."""
        self.config = c = config
        self.pair_writes = pair_writes
        self.model = c.mf.model()
        self.histories: dict[str, UserHistory] = {}
        # Anonymous ids that logged in -> the user they became.
        self.aliases: dict[str, str] = {}
        self.cooc = CoOccurrence(c.related, summing=pair_writes)
        self.trending = DecayedCounts(c.blend.cold_start_half_life_s)
        self.neighbours = NeighbourIndex(self.cooc, self.model, c.related.discount)
        self.taste = ContentTaste(c.content_dim)
        self.created = CreationTimes()
        # (now_ms, told version, item count) -> the new items' indexes (new_item_indexes).
        self._new_items: tuple[tuple[int, int, int] | None, np.ndarray] = (None, np.zeros(0))
        if c.content_on:
            # Items that joined from their content are no negatives before their first event.
            self.model.use_negative_pool([])
        if c.content_factor_rate > 0:
            self.model.words = WordFactors(self.taste, self.model.n_factors, c.content_factor_rate)
        if c.freshness_rate > 0:
            self.model.freshness = FreshnessPrior(
                self.created, self.model, c.freshness_rate, c.blend.max_future_skew_s
            )
        self.recommender = Recommender(self)
        self.changes = Changes()
        # The latest event time learned: the engine's "now" (what counts as a new item).
        self.now_ms = 0

    # --- learning ----------------------------------------------------------------------------
    def history(self, user_id: str) -> UserHistory:
        history = self.histories.get(user_id)
        if history is None:
            history = self.histories[user_id] = UserHistory(self.config.history)
        return history

    def learn(self, event: Event) -> None:
        """Fold one event into every model. Call :meth:`recommend` before it to evaluate."""
        event_type = event.event_type
        if event.timestamp_ms > self.now_ms:
            self.now_ms = event.timestamp_ms
            if self.model.freshness is not None:
                self.model.freshness.now_ms = self.now_ms
        if event_type == FORGET:
            # The id itself, never the user it became: a forget names one id exactly.
            self.forget(event.user_id)
            return
        # Events of an anonymous id that logged in belong to the user, also when they arrive
        # after the login (a user's events span topics, which Kafka does not order).
        user = self.aliases.get(event.user_id, event.user_id)
        changes = self.changes
        if event_type == "login":
            assert event.previous_user_id is not None  # the event contract requires it
            self._merge_user(event.previous_user_id, user)
            return
        if event_type == "impression":
            weight = self.config.mf.impression_weight
            if weight > 0 and event.items:
                self.model.learn_many(
                    user, event.items, [0.0] * len(event.items), [weight] * len(event.items)
                )
                changes.users.add(user)
                changes.items.update(event.items)
            return
        item = event.item_id
        if item is None:
            return
        history = self.history(user)
        changes.users.add(user)
        changes.items.add(item)
        if event_type == "blacklist":
            self.model.learn_one(user, item, 0.0, 1.0, key=event.event_id)
            history.add(event)
            return
        signal, weight = self.config.feedback.judged(event)
        # The item's number in the counts (-1: none needed, the entry is not paired).
        number = -1
        if signal is not None:
            lists = self.cooc.lists
            number = lists.number_of(item)
            # The pairs of co_occurrences, written to the counts' waiting room.
            self.cooc.pairing.pair(
                history.paired_entries(lists.number_of),
                number,
                event_type != CLICK,
                event.timestamp_ms,
            )
            self.neighbours.count_popularity(item, signal)
            changes.popularity[(signal, item)] += 1.0
            for gen, amount in self.trending.add(item, weight, event.timestamp_ms):
                changes.trending[(gen, item)] += amount
            self.model.learn_one(user, item, 1.0, weight, key=event.event_id)
        else:
            # A low rating is explicit negative feedback.
            self.model.learn_one(user, item, 0.0, 1.0, key=event.event_id)
        # A rating that is no positive signal is a low one.
        low = signal is None and event_type == "rate"
        history.add(event, LOW_RATING if low else None, number)

    def set_created(self, created: Mapping[str, int | None]) -> None:
        """The catalog's creation times of items (None: the record has none, never new);
        items created less than ``new_item_days`` before the latest event are *new*
        (``recommend.py``). Items may be told before they are in the model."""
        self.created.tell(self.model, created)

    def new_item_indexes(self) -> np.ndarray:
        """Model indexes of the items new at the latest event learned
        (:func:`pipeline.core.items.new_item_window`), ascending. Cached until the latest
        event, the told times or the items change: one pass over the items per batch, not
        one per list."""
        key = (self.now_ms, self.created.version, len(self.model.item_ids))
        if self._new_items[0] != key:
            blend = self.config.blend
            since, until = new_item_window(
                self.now_ms, blend.new_item_days, blend.max_future_skew_s
            )
            self._new_items = (key, np.flatnonzero(self.created.since(self.model, since, until)))
        return self._new_items[1]

    def new_items(self) -> np.ndarray:
        """Whether each model item (index order) is new (:meth:`new_item_indexes`)."""
        mask = np.zeros(len(self.model.item_ids), dtype=bool)
        mask[self.new_item_indexes()] = True
        return mask

    def set_content(
        self, vectors: dict[str, Any], created_ms: Mapping[str, int] | None = None
    ) -> list[str]:
        """Items' content vectors (None: the item has none any more). Items new to the factor
        model join it, started from their content neighbours (``content.py``), and their
        rows are written with the next drain. ``created_ms``, when given: the items'
        creation times (an item of ``vectors`` missing there has none; see
        :meth:`set_created`). Returns the items that joined.
        Ignored while content is off (:attr:`PersonalConfig.content_on`: the default)."""
        if not self.config.content_on:
            return []
        added = self.taste.update(self.model, vectors)
        words = self.model.words
        if words is not None:
            index = self.model.item_index
            words.changed([index[item] for item in vectors if item in index])
        if created_ms is not None:
            self.set_created({item: created_ms.get(item) for item in vectors})
        self.changes.items.update(added)
        return added

    def rebuild_negative_pool(self) -> None:
        """With content on, the factor model's negatives come from the items with positive
        events (``ImplicitMF.use_negative_pool``): rebuilt from the popularity counts after
        a restore, so a restarted worker samples what an uninterrupted one would."""
        if self.model.negative_pool is not None:
            popularity = self.cooc.popularity
            self.model.use_negative_pool(
                [
                    item
                    for counts in popularity.values()
                    for item, count in counts.items()
                    if count > 0
                ]
            )

    def learn_batch(self, events: list[Event]) -> Changes:
        """Learn a batch in timestamp order (stable) and drain what it changed."""
        for event in sorted(events, key=lambda e: e.timestamp_ms):
            self.learn(event)
        return self.drain_changes()

    def _merge_user(self, anonymous: str, user: str) -> None:
        if anonymous == user or self.aliases.get(user) == anonymous:
            return
        self.aliases[anonymous] = user
        self.changes.aliases[anonymous] = user
        # The user now has a list even before any event of theirs arrives.
        self.changes.users.add(user)
        history = self.history(user)
        old = self.histories.pop(anonymous, None)
        if old is not None:
            self.cooc.apply(merge_pairs(history, old, self.config.related))
            history.merge_from(old)
        # The user's history lists every id whose alias points to the user (or to an id
        # merged into the user): a forget of the user deletes them all.
        for dropped in history.add_merged([*(old.merged if old else ()), anonymous]):
            self._unalias(dropped)
        old_vector = self.model.user_factors.pop(anonymous, None)
        if old_vector is not None:
            current = self.model.user_factors.get(user)
            self.model.user_factors[user] = (
                old_vector if current is None else (current + old_vector) / 2
            )
        self.changes.removed_users.add(anonymous)

    def forget(self, user_id: str) -> None:
        """Erase ``user_id`` (a ``forget`` event): history, factors, list, the id's own alias
        and the aliases of the anonymous ids merged into it. The user's later events start
        a new state. Item-level state the user contributed to (co-occurrence, popularity,
        item factors) is aggregate and stays."""
        changes = self.changes
        changes.forgotten.add(user_id)
        # Nothing learned of the user so far in this batch is written.
        changes.users.discard(user_id)
        changes.removed_users.discard(user_id)
        history = self.histories.pop(user_id, None)
        self.model.user_factors.pop(user_id, None)
        merged = set(history.merged) if history is not None else set()
        # Aliases loaded in memory that point here, whether or not the history lists them.
        merged |= {anonymous for anonymous, target in self.aliases.items() if target == user_id}
        for anonymous in merged | {user_id}:
            self._unalias(anonymous)

    def _unalias(self, anonymous: str) -> None:
        """Delete the alias of ``anonymous`` (and its mention in the target's history)."""
        target = self.aliases.pop(anonymous, None)
        self.changes.aliases.pop(anonymous, None)
        self.changes.unaliased.add(anonymous)
        if target is None:
            return
        history = self.histories.get(target)
        if history is not None and anonymous in history.merged:
            # The target's stored history names the id: write it again without it.
            del history.merged[anonymous]
            self.changes.users.add(target)

    def drain_changes(self) -> Changes:
        # Trim co-occurrence lists once per drain, as the agent's Redis script trims once per
        # batch: both keep exactly the same partners.
        self.cooc.trim_touched()
        changes, self.changes = self.changes, Changes()
        if self.pair_writes:
            changes.pairs = self.cooc.take_sums()
        changes.item_deltas = self.model.drain_deltas()
        changes.items |= changes.item_deltas.keys()
        if self.model.words is not None:
            changes.word_deltas = self.model.words.drain_deltas()
        if self.model.freshness is not None:
            changes.freshness_delta = self.model.freshness.drain_delta()
        return changes

    # --- recommending (recommend.py) ----------------------------------------------------------
    def recommend(
        self, user_id: str, n: int, exclude: set[str] | None = None
    ) -> list[Recommendation]:
        return self.recommender.recommend(user_id, n, exclude)

    def related(
        self, item_id: str, n: int, relation: str | None = None, exclude: set[str] | None = None
    ) -> list[Recommendation]:
        return self.recommender.related(item_id, n, relation, exclude)

    # --- plain state, for the store (state.py) --------------------------------------------------
    def user_state(self, user_id: str) -> tuple[dict[str, Any] | None, str | None]:
        """(history as JSON-able state, factors as base64) of a user; None where absent."""
        history = self.histories.get(user_id)
        return (
            history.to_state() if history is not None else None,
            self.model.user_state(user_id),
        )

    def has_user(self, user_id: str) -> bool:
        """Whether the engine holds state of ``user_id`` (history or factors) of their own:
        not an id merged into another user at a login."""
        if user_id in self.aliases:
            return False
        return user_id in self.histories or user_id in self.model.user_factors

    def restore_user(
        self,
        user_id: str,
        history: dict[str, Any] | None,
        factors: bytes | str | None,
        alias: str | None,
    ) -> None:
        if history is not None:
            self.histories[user_id] = UserHistory.from_state(history, self.config.history)
        if factors is not None:
            self.model.set_user_state(user_id, factors)
        if alias is not None:
            self.aliases[user_id] = alias

    def evict_user(self, user_id: str) -> None:
        """Drop a user from memory (the store still has them)."""
        self.histories.pop(user_id, None)
        self.aliases.pop(user_id, None)
        self.model.user_factors.pop(user_id, None)

    def restore_items(self, rows: dict[str, bytes]) -> None:
        """Stored item rows (``ImplicitMF.item_row``), the items new here added in their
        stored index order (what sampling and tie-breaks rely on). Also the per-batch
        refresh of items other workers may have changed (between drains)."""
        model = self.model
        known = [item for item in rows if item in model.item_index]
        if known:
            model.set_item_rows(known, [rows[item] for item in known])
        new = [(item, row) for item, row in rows.items() if item not in model.item_index]
        for item_id, row in sorted(new, key=lambda pair: (model.row_index(pair[1]), pair[0])):
            model.set_item_row(item_id, row)

    def restore_words(self, rows: dict[str, bytes]) -> None:
        """Stored rows of the words' factors (``WordFactors.restore``); ignored while the
        words are not in the factor model."""
        if self.model.words is not None:
            self.model.words.restore(rows)

    def restore_freshness(self, row: bytes | None) -> None:
        """The stored freshness prior (``FreshnessPrior.restore``); ignored while it is
        off."""
        if self.model.freshness is not None:
            self.model.freshness.restore(row)

    def word_buckets(self, item_ids: list[str]) -> list[str]:
        """The stored words' rows that ``item_ids``' texts hold (none while the words are
        not in the factor model): what a batch of them reads again."""
        words = self.model.words
        if words is None:
            return []
        index = self.model.item_index
        return words.buckets([index[item] for item in item_ids if item in index])
