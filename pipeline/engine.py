"""The learning engine: every personal recommender's domain code in one place, per event.

The personal agent and ``pipeline evaluate`` run this same class: the agent loads state
from Redis into it, calls :meth:`Engine.learn` for each fresh event, and writes what
:meth:`Engine.drain_changes` reports; the evaluation replays a log through it in memory,
asking for recommendations before each event is learned (predict, then learn).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from pipeline.events import Event
from pipeline.history import UserHistory, is_conversion
from pipeline.personal import ImplicitMF
from pipeline.related import (
    DISCOUNT_BY,
    RELATIONS,
    CoOccurrence,
    Pair,
    RelatedConfig,
    blend_related,
    co_occurrences,
)
from pipeline.settings import DEFAULT_EVENT_WEIGHTS, Settings
from pipeline.trending import forward_weight, generation


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Blend and learning knobs; defaults are what ships (tuned on synthetic data, see README)."""

    n_factors: int = 32
    learning_rate: float = 0.05
    l2: float = 0.002
    n_negatives: int = 4
    impression_negative_weight: float = 0.1
    type_weights: tuple[tuple[str, float], ...] = tuple(DEFAULT_EVENT_WEIGHTS.items())
    recent_weight: float = 0.0
    recent_window_ms: int = 3_600_000
    neighbour_weight: float = 1.5
    neighbour_items: int = 10
    neighbour_partners: int = 50
    cold_start_interactions: int = 3
    trending_weight: float = 0.5
    trending_half_life_ms: float = 86_400_000.0
    positive_rating: float = 4.0
    history_len: int = 50
    seed: int = 42
    related: RelatedConfig = field(default_factory=RelatedConfig)

    def weight(self, event_type: str) -> float:
        return dict(self.type_weights).get(event_type, 0.0)


def engine_config(settings: Settings) -> EngineConfig:
    """The engine as an operator configured it (the agent and ``evaluate`` both use this)."""
    return EngineConfig(
        n_factors=settings.mf_factors,
        learning_rate=settings.mf_learning_rate,
        type_weights=tuple(settings.event_weights.items()),
        neighbour_weight=settings.neighbour_weight,
        positive_rating=settings.positive_rating,
        related=RelatedConfig(
            max_neighbours=settings.related_max_neighbours, discount=settings.related_discount
        ),
    )


@dataclass
class Changes:
    """What learning touched since the last drain: the agent writes exactly this."""

    users: set[str] = field(default_factory=set)
    items: set[str] = field(default_factory=set)
    removed_users: set[str] = field(default_factory=set)
    # anonymous id -> user id, from logins in this batch.
    aliases: dict[str, str] = field(default_factory=dict)
    pairs: list[Pair] = field(default_factory=list)
    popularity: dict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))
    # (generation, item_id) -> forward-decayed increment of the cold-start trending counts.
    trending: dict[tuple[int, str], float] = field(default_factory=lambda: defaultdict(float))


@dataclass(frozen=True, slots=True)
class Recommendation:
    item_id: str
    score: float
    source: dict


class DecayedPopularity:
    """Forward-decayed item counts (the trending fallback of cold users).

    Uses trending.py's generations: each add lands in its generation and the next, so the
    state is two plain dicts that the agent mirrors into Redis with HINCRBYFLOAT and a
    restarted worker reloads exactly. Ranking within one generation needs no decay step.
    """

    def __init__(self, half_life_ms: float) -> None:
        self.half_life_s = half_life_ms / 1000.0
        self.current: int | None = None
        self.generations: dict[int, dict[str, float]] = {}

    def add(self, item_id: str, weight: float, timestamp_ms: int) -> list[tuple[int, float]]:
        """Returns the (generation, amount) increments made, for persistence."""
        gen = generation(timestamp_ms, self.half_life_s)
        if self.current is None or gen > self.current:
            self.current = gen
            self.generations = {g: v for g, v in self.generations.items() if g >= gen}
        made = []
        for target in (gen, gen + 1):
            if target < self.current:
                continue  # a late event for a generation nobody reads any more
            amount = forward_weight(weight, timestamp_ms, target, self.half_life_s)
            scores = self.generations.setdefault(target, defaultdict(float))
            scores[item_id] += amount
            made.append((target, amount))
        return made

    def load(self, generations: dict[int, dict[str, float]]) -> None:
        """Replace the state with stored generations (the current one and the next)."""
        self.generations = {g: defaultdict(float, v) for g, v in generations.items() if v}
        self.current = min(self.generations) if self.generations else None

    @property
    def scores(self) -> dict[str, float]:
        if self.current is None:
            return {}
        return self.generations.get(self.current, {})

    def top(self, n: int) -> list[tuple[str, float]]:
        return sorted(self.scores.items(), key=lambda pair: (-pair[1], pair[0]))[:n]


class Engine:
    def __init__(self, config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        c = self.config
        self.model = ImplicitMF(
            n_factors=c.n_factors,
            learning_rate=c.learning_rate,
            l2=c.l2,
            n_negatives=c.n_negatives,
            seed=c.seed,
        )
        self.histories: dict[str, UserHistory] = {}
        # Anonymous ids that logged in -> the user they became.
        self.aliases: dict[str, str] = {}
        self.cooc = CoOccurrence(c.related)
        self.trending = DecayedPopularity(c.trending_half_life_ms)
        self.changes = Changes()
        self._neighbour_cache: dict[
            tuple[str, str], tuple[np.ndarray, np.ndarray, set[str]] | None
        ] = {}
        self._anchor_partners: dict[str, set[str]] = {}
        self._popularity: dict[str, np.ndarray] = {"click": np.zeros(0), "conversion": np.zeros(0)}

    # --- learning ----------------------------------------------------------------------------
    def history(self, user_id: str) -> UserHistory:
        history = self.histories.get(user_id)
        if history is None:
            history = self.histories[user_id] = UserHistory(max_len=self.config.history_len)
        return history

    def learn(self, event: Event) -> None:
        """Fold one event into every model. Call :meth:`recommend` before it to evaluate."""
        kind = event.event_type
        # Events of an anonymous id that logged in belong to the user, also when they arrive
        # after the login (a user's events span topics, which Kafka does not order).
        user = self.aliases.get(event.user_id, event.user_id)
        changes = self.changes
        if kind == "login":
            self._merge_user(event.previous_user_id, user)  # type: ignore[arg-type]
            return
        if kind == "impression":
            weight = self.config.impression_negative_weight
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
        if kind == "blacklist":
            self.model.learn_one(user, item, 0.0, 1.0, key=event.event_id)
            history.add(event)
            return
        conversion = is_conversion(event, self.config.positive_rating)
        pairs = self.cooc_pairs(history, event, conversion)
        if pairs:
            self.cooc.apply(pairs)
            changes.pairs.extend(pairs)
            for relation, anchor, _, _ in pairs:
                self._neighbour_cache.pop((relation, anchor), None)
                self._anchor_partners.pop(anchor, None)
        positive = kind == "click" or conversion
        if positive:
            popularity_kind = "conversion" if conversion else "click"
            self.count_popularity(item, popularity_kind)
            changes.popularity[(popularity_kind, item)] += 1.0
            weight = self.config.weight(kind)
            for gen, amount in self.trending.add(item, weight, event.timestamp_ms):
                changes.trending[(gen, item)] += amount
            self.model.learn_one(user, item, 1.0, weight, key=event.event_id)
        else:
            # A low rating is explicit negative feedback.
            self.model.learn_one(user, item, 0.0, 1.0, key=event.event_id)
        history.add(event, None if positive or kind != "rate" else "rate_low")

    def cooc_pairs(self, history: UserHistory, event: Event, conversion: bool) -> list[Pair]:
        return co_occurrences(history, event, conversion, self.config.related)

    def _merge_user(self, anonymous: str, user: str) -> None:
        if anonymous == user or self.aliases.get(user) == anonymous:
            return
        self.aliases[anonymous] = user
        self.changes.aliases[anonymous] = user
        # The user now has a list even before any event of theirs arrives.
        self.changes.users.add(user)
        old = self.histories.pop(anonymous, None)
        if old is not None:
            self.history(user).merge_from(old)
            self.changes.users.add(user)
        old_vector = self.model.user_factors.pop(anonymous, None)
        if old_vector is not None:
            current = self.model.user_factors.get(user)
            self.model.user_factors[user] = (
                old_vector if current is None else (current + old_vector) / 2
            )
            self.changes.users.add(user)
        self.changes.removed_users.add(anonymous)

    def drain_changes(self) -> Changes:
        # Trim co-occurrence lists once per drain, as the agent's Redis script trims once per
        # batch: both keep exactly the same partners.
        self.cooc.trim_touched()
        changes, self.changes = self.changes, Changes()
        changes.items |= self.model.drain_touched()
        return changes

    # --- recommending ------------------------------------------------------------------------
    def recommend(
        self, user_id: str, n: int, exclude: set[str] | None = None
    ) -> list[Recommendation]:
        """Top ``n`` items for a user: factors + neighbours of recent history (+ trending when cold).

        ``exclude`` defaults to what the user bought, consumed or blacklisted.
        """
        c = self.config
        model = self.model
        item_count = len(model.item_ids)
        if item_count == 0:
            return []
        history = self.histories.get(user_id)
        if exclude is None:
            exclude = set(history.excluded) if history else set()
        scores = model.score_all(user_id).astype(np.float64)
        anchors: list[str] = []
        if history and history.recent and c.neighbour_weight > 0:
            anchors = history.items_since(0)[: c.neighbour_items]
            for rank, anchor in enumerate(anchors):
                anchor_weight = c.neighbour_weight / (1.0 + rank)
                for relation in RELATIONS:
                    entry = self._neighbour_scores(anchor, relation)
                    if entry is not None:
                        # Indexes within one entry are distinct, so fancy-index += is exact.
                        scores[entry[0]] += anchor_weight * entry[1]
        if history and history.recent and c.recent_weight > 0:
            # Recently viewed, not yet converted: the strongest intent signal there is.
            newest = history.recent[-1][2]
            viewed = history.items_since(newest - c.recent_window_ms, frozenset({"click"}))
            for rank, item_id in enumerate(viewed[: c.neighbour_items]):
                index = model.item_index.get(item_id)
                if index is not None:
                    scores[index] += c.recent_weight / (1.0 + rank)
        cold = history is None or history.interactions < c.cold_start_interactions
        if cold and c.trending_weight > 0 and self.trending.scores:
            top_trending = self.trending.top(200)
            if top_trending:
                best = top_trending[0][1]
                for item_id, value in top_trending:
                    index = model.item_index.get(item_id)
                    if index is not None:
                        scores[index] += c.trending_weight * 4.0 * value / best
        return self._top(scores, n, exclude, anchors, cold)

    def _partner_counts(
        self, anchor: str, relation: str
    ) -> tuple[np.ndarray, np.ndarray, set[str]] | None:
        """(item indexes, co-occurrence counts, partner ids) of one anchor, sorted by index.

        Cached until the anchor's co-occurrences change. The popularity discount is applied
        at use time (:meth:`_neighbour_scores`), so the cache never holds a stale discount.
        """
        key = (relation, anchor)
        if key in self._neighbour_cache:
            return self._neighbour_cache[key]
        partners = self.cooc.counts[relation].get(anchor)
        entry = None
        if partners:
            index_of = self.model.item_index
            known = sorted((index_of[p], count) for p, count in partners.items() if p in index_of)
            if known:
                entry = (
                    np.fromiter((i for i, _ in known), dtype=np.int64, count=len(known)),
                    np.fromiter((c for _, c in known), dtype=np.float64, count=len(known)),
                    set(partners),
                )
        self._neighbour_cache[key] = entry
        return entry

    def _neighbour_scores(self, anchor: str, relation: str) -> tuple[np.ndarray, np.ndarray] | None:
        """The anchor's best ``neighbour_partners`` partners: (indexes, discounted scores
        scaled to the best), ranked as :func:`~pipeline.related.rank_related` ranks them."""
        entry = self._partner_counts(anchor, relation)
        if entry is None:
            return None
        indexes, counts, _ = entry
        popularity = self._popularity_vector(DISCOUNT_BY[relation])
        discounted = counts / (popularity[indexes] + 1.0) ** self.config.related.discount
        keep = self.config.neighbour_partners
        if len(discounted) > keep:
            # Ties at the cut go to the smaller index: stable and the same after a restart.
            chosen = np.lexsort((indexes, -discounted))[:keep]
            indexes, discounted = indexes[chosen], discounted[chosen]
        best = discounted.max()
        return indexes, discounted / (best if best > 0 else 1.0)

    def _popularity_vector(self, kind: str) -> np.ndarray:
        """Popularity counts aligned with the model's item indexes (grown on demand)."""
        vector = self._popularity[kind]
        count = len(self.model.item_ids)
        if len(vector) < count:
            grown = np.zeros(max(count, 2 * len(vector)))
            grown[: len(vector)] = vector
            source = self.cooc.popularity[kind]
            for index in range(len(vector), count):
                grown[index] = source.get(self.model.item_ids[index], 0.0)
            vector = self._popularity[kind] = grown
        return vector

    def count_popularity(self, item_id: str, kind: str, amount: float = 1.0) -> None:
        """One positive event of ``kind`` for ``item_id`` (dict and aligned vector)."""
        self.cooc.count_popularity(item_id, kind, amount)
        index = self.model.item_index.get(item_id)
        vector = self._popularity[kind]
        if index is not None and index < len(vector):
            vector[index] += amount

    def load_popularity(self, kind: str, counts: dict[str, float]) -> None:
        self.cooc.popularity[kind].update(counts)
        self._popularity[kind] = np.zeros(0)

    def _top(
        self,
        scores: np.ndarray,
        n: int,
        exclude: set[str],
        anchors: list[str],
        cold: bool,
    ) -> list[Recommendation]:
        ids = self.model.item_ids
        for item_id in exclude:
            index = self.model.item_index.get(item_id)
            if index is not None:
                scores[index] = -math.inf
        take = min(n, len(ids))
        if take <= 0:
            return []
        anchor_partners = [(anchor, self._partners_of(anchor)) for anchor in anchors]
        top = np.argpartition(-scores, take - 1)[:take]
        top = top[np.lexsort((top, -scores[top]))]
        stage = "cold_start" if cold else "personal"
        out = []
        for index, score in zip(top.tolist(), scores[top].tolist(), strict=True):
            if score == -math.inf:
                break
            item_id = ids[index]
            source: dict = {"model": "for_you", "stage": stage}
            # Attribution for the items served: which recent items led here (at most 3).
            sources = [anchor for anchor, partners in anchor_partners if item_id in partners][:3]
            if sources:
                source["source_items"] = sources
            out.append(Recommendation(item_id, score, source))
        return out

    def _partners_of(self, anchor: str) -> set[str]:
        """Every partner of ``anchor`` in any relation (cached like the counts)."""
        partners = self._anchor_partners.get(anchor)
        if partners is None:
            partners = set()
            for relation in RELATIONS:
                entry = self._partner_counts(anchor, relation)
                if entry is not None:
                    partners |= entry[2]
            self._anchor_partners[anchor] = partners
        return partners

    def related(
        self, item_id: str, n: int, relation: str | None = None, exclude: set[str] | None = None
    ) -> list[Recommendation]:
        """Related items of one relation, or of all relations blended (``relation=None``)."""
        exclude = (exclude or set()) | {item_id}
        relations = [relation] if relation else list(RELATIONS)
        depth = max(n, self.config.neighbour_partners)
        lists = {name: self.cooc.related(item_id, name, depth, exclude) for name in relations}
        return [
            Recommendation(
                partner, score, {"model": "related", "relation": label, "source_items": [item_id]}
            )
            for partner, score, label in blend_related(lists, n)
        ]
