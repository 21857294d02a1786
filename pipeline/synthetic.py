"""Reproducible synthetic events and catalog with planted, learnable structure.

Pure Python + numpy + orjson: no Kafka, Redis or faust here. The CLI publishes what
:meth:`SyntheticWorld.events` and :meth:`SyntheticWorld.catalog` return.

Planted structure (ground truth exposed by :meth:`SyntheticWorld.user_cluster` and
:meth:`SyntheticWorld.item_cluster`):

* Items belong to one taste cluster and one primary category (sometimes a second), drawn
  from the cluster's category mix; brand and tags lean on the cluster too.
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

import io
import math
import os
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import chain, count
from typing import IO, Any

import numpy as np
import orjson

__all__ = ["ID_PATTERN", "SyntheticConfig", "SyntheticWorld", "write_jsonl"]

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
_DEVICES = ("mobile", "desktop", "tablet")
_DEVICE_CDF = (0.6, 0.9, 1.0)
_PAGES = ("home", "category", "item", "cart")
_PAGE_CDF = (0.45, 0.75, 0.95, 1.0)
_CHUNK = 1 << 16  # random numbers drawn per numpy call; fixed so output never depends on n
_TOP = 1.0 - 2.0**-40  # see _Stream._rebuild


@dataclass(frozen=True)
class SyntheticConfig:
    """All knobs of the generator; every one has a default. Invalid values raise ValueError."""

    seed: int = 42
    n_users: int = 2000
    n_items: int = 500
    n_categories: int = 20
    n_clusters: int = 10
    start_ms: int = 1_767_225_600_000  # 2026-01-01T00:00:00Z
    events_per_second: float = 50.0  # simulated rate: spacing of timestamps
    anonymous_fraction: float = 0.1  # share of sessions started by an anonymous id
    login_prob: float = 0.25  # chance an anonymous session logs in (mid-session)
    latent_dim: int = 16  # size of user/item latent vectors
    user_noise: float = 0.6  # per-dimension spread of users around their centroid
    item_noise: float = 0.6  # per-dimension spread of items around their centroid
    taste_sharpness: float = 1.5  # how strongly impressions follow cluster taste
    popularity_mix: float = 0.3  # share of impression slots drawn by popularity alone
    impression_size: tuple[int, int] = (5, 20)  # min/max items shown, inclusive
    session_steps: float = 3.0  # mean impressions + searches per session (geometric)
    search_prob: float = 0.2  # chance a session step is a direct (search) click
    # Chance a session step is a conversion with no click on that item first (a link from a
    # newsletter, a repeat order, autoplay): the conversions a recommender must foresee.
    direct_prob: float = 0.1
    position_decay: float = 0.7  # click bias (1 + position) ** -decay
    relevance_slope: float = 1.0  # relevance = sigmoid(slope * (preference - offset))
    relevance_offset: float = 2.0  # preference at which relevance is 0.5
    click_scale: float = 0.15  # click probability at position 0 for relevance 1
    max_clicks: int = 3  # clicks per impression at most
    conversion_scale: float = 0.35  # basket/consume probability after a click, times relevance
    checkout_prob: float = 0.6  # chance a non-empty basket is bought at session end
    rate_prob: float = 0.5  # chance a buy/consume is followed by a rating
    blacklist_prob: float = 0.005  # chance per impression of blacklisting a shown item
    drift_every: int = 1000  # events between popularity refreshes
    drift_sigma: float = 0.15  # step of the log-popularity random walk per refresh
    drift_reversion: float = 0.01  # pull of the walk back to the base popularity
    n_trending: int = 10  # items that trend up in each phase
    trend_phase: int = 10  # refreshes per trend phase
    trend_boost: float = 4.0  # log-popularity a trending item gains (before fading)
    trend_decay: float = 0.9  # per-refresh fade of past trend boosts
    second_category_prob: float = 0.3  # chance an item has a second category
    unavailable_fraction: float = 0.03  # items flagged unavailable (never shown)
    concurrent_sessions: int = 100  # interleaved sessions; in-session gap ~ this / rate

    def __post_init__(self) -> None:
        for name in (
            "n_users",
            "n_items",
            "n_categories",
            "n_clusters",
            "latent_dim",
            "drift_every",
            "trend_phase",
            "concurrent_sessions",
            "max_clicks",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.seed < 0 or self.n_trending < 0:
            raise ValueError("seed and n_trending must be >= 0")
        fractions = (
            "anonymous_fraction",
            "login_prob",
            "popularity_mix",
            "search_prob",
            "click_scale",
            "direct_prob",
            "conversion_scale",
            "checkout_prob",
            "rate_prob",
            "blacklist_prob",
            "second_category_prob",
            "unavailable_fraction",
            "drift_reversion",
            "trend_decay",
        )
        for name in fractions:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1]")
        if not self.events_per_second > 0:
            raise ValueError("events_per_second must be > 0")
        low, high = self.impression_size
        if not 1 <= low <= high <= 100:
            raise ValueError("impression_size must satisfy 1 <= min <= max <= 100")
        if self.session_steps < 1:
            raise ValueError("session_steps must be >= 1")


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
        self._user_top = self._user_cdf[-1] * _TOP

        self._base_logpop = rng.normal(0.0, 1.0, n_it)
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
        self._catalog = []
        for i in range(n_it):
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
        stream = _Stream(self)
        uniform = stream.uniform
        slots = [stream.session() for _ in range(cfg.concurrent_sessions)]
        ms_per_event = 1000.0 / cfg.events_per_second
        start, seed, n_slots, drift_every = cfg.start_ms, cfg.seed, len(slots), cfg.drift_every
        k = 0
        while n is None or k < n:
            if k and k % drift_every == 0:
                stream.drift()
            j = int(uniform() * n_slots)
            session = slots[j]
            event = session.pop()  # sessions are stored reversed: pop() is the next event
            if not session:
                slots[j] = stream.session()
            event["event_id"] = f"{seed}-{k}"
            event["timestamp"] = start + int(k * ms_per_event)
            k += 1
            yield event


def _buffered(rng: np.random.Generator, draw: str) -> Callable[[], float]:
    """Return a zero-argument function giving the next number of an endless stream.

    numpy calls cost ~1 us each; drawing 64k at a time and handing out Python floats keeps
    the per-event cost tiny while staying a pure function of the seed.
    """
    chunks = (getattr(rng, draw)(_CHUNK).tolist() for _ in count())
    return chain.from_iterable(chunks).__next__


class _Stream:
    """Mutable state of one event stream: random streams, popularity, id counters."""

    def __init__(self, world: SyntheticWorld) -> None:
        self.w, self.cfg = world, world.config
        root = np.random.SeedSequence([world.config.seed, 1])
        rng_u, rng_n, self._rng_drift = (np.random.default_rng(s) for s in root.spawn(3))
        self.uniform = _buffered(rng_u, "random")
        self.normal = _buffered(rng_n, "standard_normal")
        n_it = len(world._item_ids)
        self._walk = np.zeros(n_it)
        self._boost = np.zeros(n_it)
        self._trending = np.zeros(0, dtype=np.int64)
        self._refreshes = 0
        self._n_avail = int(world._available.sum())
        self._bias = [(1.0 + p) ** -self.cfg.position_decay for p in range(100)]
        self._log_stay = (
            math.log(1.0 - 1.0 / self.cfg.session_steps) if (self.cfg.session_steps > 1) else None
        )
        self.sessions = self.recs = self.anons = 0
        self._rebuild()

    def drift(self) -> None:
        """Advance popularity one step: random walk plus phased trending items."""
        cfg, rng = self.cfg, self._rng_drift
        self._walk *= 1.0 - cfg.drift_reversion
        self._walk += rng.normal(0.0, cfg.drift_sigma, self._walk.size)
        self._boost *= cfg.trend_decay
        if self._refreshes % cfg.trend_phase == 0:
            pool = np.flatnonzero(self.w._available)
            self._trending = rng.choice(pool, min(cfg.n_trending, pool.size), replace=False)
        self._boost[self._trending] += cfg.trend_boost / cfg.trend_phase
        self._refreshes += 1
        self._rebuild()

    def _rebuild(self) -> None:
        # Cumulative weights as Python lists: bisect on them is far cheaper than numpy.
        w = self.w
        logpop = w._base_logpop + self._walk + self._boost
        # Tables are (cdf, top), top just under cdf[-1]: bisect_right(cdf, u * top) is a valid
        # index for u < 1 and never a zero-weight item. Unavailable items get -inf before the
        # max shift, so every table's largest weight is 1 and none underflows to all zeros.
        logpop = np.where(w._available, logpop, -np.inf)
        pop = np.cumsum(np.exp(logpop - logpop.max()))
        self._pop = (pop.tolist(), float(pop[-1]) * _TOP)
        taste = self.cfg.taste_sharpness * w._cluster_pref + logpop
        taste = np.cumsum(np.exp(taste - taste.max(axis=1, keepdims=True)), axis=1)
        self._taste = [(row, row[-1] * _TOP) for row in taste.tolist()]

    def session(self) -> list[dict]:
        """All events of one new session, reversed (last event first), without ids/times."""
        w, cfg, u = self.w, self.cfg, self.uniform
        user = bisect_right(w._user_cdf, u() * w._user_top)
        cluster = int(w._user_cluster[user])
        pref = w._item_latent @ w._user_latent[user] / w._scale + w._item_cat_aff[cluster]
        slope, offset = cfg.relevance_slope, cfg.relevance_offset
        rel = (1.0 / (1.0 + np.exp(-slope * (pref - offset)))).tolist()
        known = w._user_ids[user]
        uid = known
        if u() < cfg.anonymous_fraction:
            uid = f"anon-{self.anons}"
            self.anons += 1
            w._anon[uid] = user
        sid = f"s{cfg.seed}-{self.sessions}"
        self.sessions += 1
        x = u()
        device = _DEVICES[sum(x >= c for c in _DEVICE_CDF[:-1])]
        steps = 1
        if self._log_stay is not None:  # geometric number of steps with the configured mean
            steps += int(math.log(1.0 - u()) / self._log_stay)
        login_at = int(u() * steps) if uid != known and u() < cfg.login_prob else -1
        taste = self._taste[cluster]
        out: list[dict] = []
        basket: list[int] = []
        for step in range(steps):
            draw = u()
            if draw < cfg.direct_prob:
                self._direct(out, uid, sid, bisect_right(taste[0], u() * taste[1]), rel)
            elif draw < cfg.direct_prob + cfg.search_prob:
                item = bisect_right(taste[0], u() * taste[1])
                out.append(
                    {
                        "event_id": "",
                        "type": "click",
                        "timestamp": 0,
                        "user_id": uid,
                        "item_id": w._item_ids[item],
                        "session_id": sid,
                        "context": {"device": device, "page": "search"},
                    }
                )
                self._convert(out, uid, sid, item, rel[item], basket)
            else:
                self._impression(out, uid, sid, device, taste, rel, basket)
            if step == login_at:  # after >= 1 anonymous event, so the anon id exists
                out.append(
                    {
                        "event_id": "",
                        "type": "login",
                        "timestamp": 0,
                        "user_id": known,
                        "previous_user_id": uid,
                        "session_id": sid,
                        "context": {"device": device},
                    }
                )
                uid = known
        if basket and u() < cfg.checkout_prob:
            for item in basket:  # bought together: one taste, so "also bought" is learnable
                qty = 1 + int(u() < 0.2) + int(u() < 0.05)
                out.append(
                    {
                        "event_id": "",
                        "type": "buy",
                        "timestamp": 0,
                        "user_id": uid,
                        "item_id": w._item_ids[item],
                        "value": qty,
                        "price": w._prices[item],
                        "session_id": sid,
                    }
                )
                self._maybe_rate(out, uid, sid, item, rel[item])
        out.reverse()
        return out

    def _impression(
        self,
        out: list[dict],
        uid: str,
        sid: str,
        device: str,
        taste: tuple[list[float], float],
        rel: list[float],
        basket: list[int],
    ) -> None:
        w, cfg, u = self.w, self.cfg, self.uniform
        low, high = cfg.impression_size
        size = min(low + int(u() * (high - low + 1)), self._n_avail)
        shown: list[int] = []
        seen: set[int] = set()
        pop_cdf, pop_top = self._pop
        taste_cdf, taste_top = taste
        mix = cfg.popularity_mix
        for _ in range(4 * size):  # bounded retries: duplicates are skipped, not reshown
            if u() < mix:
                item = bisect_right(pop_cdf, u() * pop_top)
            else:
                item = bisect_right(taste_cdf, u() * taste_top)
            if item not in seen:
                seen.add(item)
                shown.append(item)
                if len(shown) == size:
                    break
        rid = f"r{cfg.seed}-{self.recs}"
        self.recs += 1
        x = u()
        page = _PAGES[sum(x >= c for c in _PAGE_CDF[:-1])]
        ids = w._item_ids
        out.append(
            {
                "event_id": "",
                "type": "impression",
                "timestamp": 0,
                "user_id": uid,
                "items": [ids[i] for i in shown],
                "session_id": sid,
                "recommendation_id": rid,
                "context": {"device": device, "page": page},
            }
        )
        clicks, bias, scale = 0, self._bias, cfg.click_scale
        for pos, item in enumerate(shown):
            if u() < scale * bias[pos] * rel[item]:
                out.append(
                    {
                        "event_id": "",
                        "type": "click",
                        "timestamp": 0,
                        "user_id": uid,
                        "item_id": ids[item],
                        "session_id": sid,
                        "recommendation_id": rid,
                        "context": {"device": device, "page": page, "position": pos},
                    }
                )
                self._convert(out, uid, sid, item, rel[item], basket)
                clicks += 1
                if clicks == cfg.max_clicks:
                    break
        if u() < cfg.blacklist_prob:
            worst = min(shown, key=rel.__getitem__)
            out.append(
                {
                    "event_id": "",
                    "type": "blacklist",
                    "timestamp": 0,
                    "user_id": uid,
                    "item_id": ids[worst],
                    "session_id": sid,
                }
            )

    def _convert(
        self, out: list[dict], uid: str, sid: str, item: int, rel: float, basket: list[int]
    ) -> None:
        """After a click: media is consumed, products go to the basket (bought at checkout)."""
        if self.uniform() >= self.cfg.conversion_scale * rel:
            return
        item_id = self.w._item_ids[item]
        if self.w._is_media[item]:
            fraction = round(min(1.0, max(0.0, rel + 0.2 * self.normal())), 3)
            out.append(
                {
                    "event_id": "",
                    "type": "consume",
                    "timestamp": 0,
                    "user_id": uid,
                    "item_id": item_id,
                    "value": fraction,
                    "session_id": sid,
                }
            )
            self._maybe_rate(out, uid, sid, item, rel)
        elif item not in basket:
            out.append(
                {
                    "event_id": "",
                    "type": "basket",
                    "timestamp": 0,
                    "user_id": uid,
                    "item_id": item_id,
                    "session_id": sid,
                }
            )
            basket.append(item)

    def _direct(self, out: list[dict], uid: str, sid: str, item: int, rel: list[float]) -> None:
        """A conversion that no click on the item preceded."""
        item_id = self.w._item_ids[item]
        if self.w._is_media[item]:
            out.append(
                {
                    "event_id": "",
                    "type": "consume",
                    "timestamp": 0,
                    "user_id": uid,
                    "item_id": item_id,
                    "value": round(min(1.0, rel[item] + 0.2), 3),
                    "session_id": sid,
                }
            )
        else:
            out.append(
                {
                    "event_id": "",
                    "type": "buy",
                    "timestamp": 0,
                    "user_id": uid,
                    "item_id": item_id,
                    "value": 1,
                    "price": self.w._prices[item],
                    "session_id": sid,
                }
            )
        self._maybe_rate(out, uid, sid, item, rel[item])

    def _maybe_rate(self, out: list[dict], uid: str, sid: str, item: int, rel: float) -> None:
        if self.uniform() < self.cfg.rate_prob:
            stars = min(5, max(1, round(1.0 + 4.0 * rel + 0.7 * self.normal())))
            out.append(
                {
                    "event_id": "",
                    "type": "rate",
                    "timestamp": 0,
                    "user_id": uid,
                    "item_id": self.w._item_ids[item],
                    "value": stars,
                    "session_id": sid,
                }
            )


def write_jsonl(records: Iterable[dict], path_or_file: str | os.PathLike | IO[Any]) -> int:
    """Write one orjson line per record; return the count.

    A path is created/truncated. A file object is written to and left open: text streams
    (e.g. ``sys.stdout``) get str, anything else bytes.
    """
    if isinstance(path_or_file, str | os.PathLike):
        with open(path_or_file, "wb") as handle:
            return write_jsonl(records, handle)
    text = isinstance(path_or_file, io.TextIOBase)
    written, batch = 0, []
    dumps, newline = orjson.dumps, orjson.OPT_APPEND_NEWLINE
    for record in records:
        batch.append(dumps(record, option=newline))
        written += 1
        if len(batch) == 4096:  # bounded memory for endless streams
            data = b"".join(batch)
            path_or_file.write(data.decode() if text else data)
            batch.clear()
    if batch:
        data = b"".join(batch)
        path_or_file.write(data.decode() if text else data)
    return written
