"""Reproducible synthetic events and catalog with planted, learnable structure.

Pure Python + numpy + orjson: no Kafka, Redis or faust here. The CLI publishes what
:meth:`SyntheticWorld.events` and :meth:`SyntheticWorld.catalog` return.

Planted structure (ground truth exposed by :meth:`SyntheticWorld.user_cluster` and
:meth:`SyntheticWorld.item_cluster`):

* Items belong to one taste cluster and one primary category (sometimes a second), drawn
  from the cluster's category mix; brand and tags lean on the cluster too, and so does the
  ``description``: made-up words, most from the cluster's vocabulary, some from the
  category's, a few common to all (content that carries the taste structure). With
  ``release_fraction``, items keep being released during the log (``created_at``).
* Users belong to a cluster. Preference of user ``u`` for item ``i`` is
  ``<latent_u, latent_i> / |centroid| + category affinity of u's cluster for i``; the
  relevance (probability scale) is a sigmoid of it.
* Item popularity drifts: a mean-reverting random walk plus a few items per phase that
  trend up and then fade, refreshed every ``drift_every`` events.
* Sessions: impressions mix popular and taste-matched items; clicks follow with position
  bias ``(1 + pos) ** -position_decay`` times relevance; baskets/consumes follow clicks with
  probability rising in relevance; a basket is bought together at checkout (so "also
  bought" pairs share a cluster); ratings correlate with relevance; rare blacklists hit the
  least relevant shown item; some sessions are anonymous and some of those ``login``.

Determinism: the same config gives byte-identical output, every call of ``events`` starts
the stream afresh, and ``events(n)`` is a prefix of ``events(m)`` for ``n <= m``.
Timestamps are ``start_ms + floor(k * 1000 / events_per_second)`` for the k-th event.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import orjson

from pipeline.tools.synthetic.config import SyntheticConfig
from pipeline.tools.synthetic.sessions import TOP, SessionStream

# Every id, category name and attribute value emitted here matches this.
ID_PATTERN = r"^[\w.:@/+=-]{1,128}$"

# Ordered so that index % 5 == 4 are media categories (consumed, not bought).
_CATEGORIES = (
    "electronics",
    "fashion",
    "home",
    "garden",
    "music",
    "toys",
    "sports",
    "beauty",
    "grocery",
    "movies",
    "auto",
    "health",
    "office",
    "pets",
    "games",
    "baby",
    "outdoor",
    "kitchen",
    "jewelry",
    "books",
)
_COLORS = ("black", "white", "red", "blue", "green", "grey", "yellow", "pink", "brown", "beige")
# Syllables of the made-up words of item descriptions (see _vocabulary).
_SYLLABLES = ("ka", "lo", "mi", "ru", "te", "so", "na", "vi", "po", "de", "zu", "fe", "ga", "xi")
# Words of a description: from the item's taste cluster, its category, and common to all.
_CLUSTER_WORDS, _CATEGORY_WORDS, _COMMON_WORDS = 5, 3, 2


def _vocabulary(rng: np.random.Generator, groups: int, size: int, tag: str) -> list[list[str]]:
    """``groups`` disjoint lists of ``size`` made-up words (three syllables and a tag that
    keeps the groups apart): words that carry a group's identity and nothing else."""
    syllables = np.array(_SYLLABLES)
    picks = rng.integers(len(_SYLLABLES), size=(groups, size, 3))
    return [
        [f"{''.join(syllables[picks[g, w]])}{tag}{g}" for w in range(size)] for g in range(groups)
    ]


class SyntheticWorld:
    """Users, items and clusters built from ``config.seed``; a factory of event streams."""

    def __init__(self, config: SyntheticConfig) -> None:
        self.config = cfg = config
        rng = np.random.default_rng(cfg.seed)
        n_cl, n_cat, n_it, n_us, dim = (
            cfg.n_clusters,
            cfg.n_categories,
            cfg.n_items,
            cfg.n_users,
            cfg.latent_dim,
        )
        # Unit centroids scaled so same-cluster dot products (~scale^2) stand out.
        self._scale = scale = 2.0
        centroids = rng.normal(size=(n_cl, dim))
        centroids *= scale / np.linalg.norm(centroids, axis=1, keepdims=True)
        self._centroids = centroids
        # Sparse Dirichlet: each cluster cares about a few categories.
        cat_mix = rng.dirichlet(np.full(n_cat, 0.3), size=n_cl)
        cat_logaff = np.log(cat_mix * n_cat + 0.1)

        self._item_cluster = item_cl = rng.integers(n_cl, size=n_it)
        self._item_latent = centroids[item_cl] + rng.normal(0.0, cfg.item_noise, (n_it, dim))
        draws = rng.random(n_it)
        primary = (draws[:, None] > np.cumsum(cat_mix, axis=1)[item_cl]).sum(axis=1)
        primary = np.minimum(primary, n_cat - 1)
        second = rng.integers(n_cat, size=n_it)
        has_second = (rng.random(n_it) < cfg.second_category_prob) & (second != primary)
        # Per (cluster, item) category affinity; the second category counts half.
        self._item_cat_aff = cat_logaff[:, primary] + np.where(
            has_second, 0.5 * cat_logaff[:, second], 0.0
        )
        self._cluster_pref = centroids @ self._item_latent.T / scale + self._item_cat_aff

        self._user_cluster = user_cl = rng.integers(n_cl, size=n_us)
        self._user_latent = centroids[user_cl] + rng.normal(0.0, cfg.user_noise, (n_us, dim))
        self._user_cdf = np.cumsum(rng.lognormal(0.0, 1.0, n_us)).tolist()  # activity skew
        self._user_top = self._user_cdf[-1] * TOP

        self._base_logpop = rng.normal(0.0, cfg.popularity_spread, n_it)
        available = rng.random(n_it) >= cfg.unavailable_fraction
        available[int(np.argmax(self._base_logpop))] = True  # never an empty catalog
        self._available = available

        names = [_CATEGORIES[k % 20] + (f"-{k // 20}" if k >= 20 else "") for k in range(n_cat)]
        base_price = rng.lognormal(3.0, 1.0, n_cat)
        prices = np.round(base_price[primary] * rng.lognormal(0.0, 0.3, n_it) + 0.99, 2)
        bands = np.searchsorted(np.quantile(prices, [1 / 3, 2 / 3]), prices, side="right")
        # Brands and tags are cluster-flavoured so content features carry signal too.
        own_brand = rng.random(n_it) < 0.7
        brands = np.where(
            own_brand, item_cl * 3 + rng.integers(3, size=n_it), rng.integers(n_cl * 3, size=n_it)
        )
        tags = item_cl[:, None] * 4 + rng.integers(4, size=(n_it, 2))
        colors = rng.integers(len(_COLORS), size=n_it)
        created = cfg.start_ms - rng.integers(86_400_000, 365 * 86_400_000, size=n_it)

        self._item_ids = [f"item-{i}" for i in range(n_it)]
        self._user_ids = [f"user-{u}" for u in range(n_us)]
        self._item_index = {item: i for i, item in enumerate(self._item_ids)}
        self._user_index = {user: u for u, user in enumerate(self._user_ids)}
        self._is_media = [int(k) % 5 == 4 for k in primary]
        self._prices = prices.tolist()
        self._anon: dict[str, int] = {}  # anonymous id -> the user behind it
        # Event index from which each item may be shown (0: from the start).
        self._release_at = np.zeros(n_it, dtype=np.int64)
        if cfg.release_fraction > 0:
            late = np.flatnonzero(rng.random(n_it) < cfg.release_fraction)
            late = late[late != int(np.argmax(self._base_logpop))]  # one item from the start
            self._release_at[late] = np.sort(rng.integers(1, cfg.release_span, size=late.size))
            ms_per_event = 1000.0 / cfg.events_per_second
            created[late] = cfg.start_ms + (self._release_at[late] * ms_per_event).astype(np.int64)
        # Descriptions use their own generator: adding them changed no other draw.
        text_rng = np.random.default_rng([cfg.seed, 7])
        cluster_words = _vocabulary(text_rng, n_cl, 30, "c")
        category_words = _vocabulary(text_rng, n_cat, 15, "k")
        common_words = _vocabulary(text_rng, 1, 40, "x")[0]
        self._catalog = []
        for i in range(n_it):
            words = [
                *text_rng.choice(cluster_words[item_cl[i]], _CLUSTER_WORDS),
                *text_rng.choice(category_words[primary[i]], _CATEGORY_WORDS),
                *text_rng.choice(common_words, _COMMON_WORDS),
            ]
            text_rng.shuffle(words)
            cats = [names[primary[i]]] + ([names[second[i]]] if has_second[i] else [])
            brand, color = f"brand-{int(brands[i]):03d}", _COLORS[colors[i]]
            attributes = {
                "brand": brand,
                "color": color,
                "price_band": ("low", "mid", "high")[int(bands[i])],
                "tags": sorted({f"tag-{int(t)}" for t in tags[i]}),
            }
            self._catalog.append(
                {
                    "item_id": self._item_ids[i],
                    "categories": cats,
                    "attributes": attributes,
                    "created_at": int(created[i]),
                    "available": bool(available[i]),
                    "price": self._prices[i],
                    "title": f"{brand} {color} {cats[0]} {i}",
                    "description": " ".join(str(word) for word in words),
                }
            )

    def catalog(self) -> list[dict]:
        """One item record per item (fresh copies), in item index order."""
        return orjson.loads(orjson.dumps(self._catalog))

    def user_cluster(self, user_id: str) -> int:
        """Ground-truth taste cluster of a known or already-emitted anonymous id (KeyError)."""
        user = self._user_index.get(user_id)
        return int(self._user_cluster[self._anon[user_id] if user is None else user])

    def item_cluster(self, item_id: str) -> int:
        """Ground-truth cluster of an item id (KeyError if unknown)."""
        return int(self._item_cluster[self._item_index[item_id]])

    def events(self, n: int | None = None) -> Iterator[dict]:
        """Yield ``n`` events (endless if None), timestamps non-decreasing.

        Each call restarts the stream from the seed. Events are interleaved from
        ``concurrent_sessions`` sessions; within a session the order is causal (impression
        before its clicks, click before basket, basket before buy, anonymous events before
        the login). Memory grows only with the number of anonymous ids emitted.
        """
        if n is not None and n < 0:
            raise ValueError("n must be >= 0")
        cfg = self.config
        stream = SessionStream(self)
        uniform = stream.uniform
        slots = [stream.session() for _ in range(cfg.concurrent_sessions)]
        ms_per_event = 1000.0 / cfg.events_per_second
        start, seed, n_slots, drift_every = cfg.start_ms, cfg.seed, len(slots), cfg.drift_every
        step = cfg.timestamp_step_ms
        k = 0
        while n is None or k < n:
            if k and k % drift_every == 0:
                stream.drift(k)
            j = int(uniform() * n_slots)
            session = slots[j]
            event = session.pop()  # sessions are stored reversed: pop() is the next event
            if not session:
                slots[j] = stream.session()
            event["event_id"] = f"{seed}-{k}"
            event["timestamp"] = (start + int(k * ms_per_event)) // step * step
            k += 1
            yield event
