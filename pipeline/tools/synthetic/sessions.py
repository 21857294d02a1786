"""The event stream of a synthetic world: sessions of impressions, clicks, baskets, buys,
ratings, blacklists and logins, drawn from the world's planted structure (``world.py``)."""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable
from itertools import chain, count
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from pipeline.tools.synthetic.world import SyntheticWorld

_DEVICES = ("mobile", "desktop", "tablet")
_DEVICE_CDF = (0.6, 0.9, 1.0)
_PAGES = ("home", "category", "item", "cart")
_PAGE_CDF = (0.45, 0.75, 0.95, 1.0)
_CHUNK = 1 << 16  # random numbers drawn per numpy call; fixed so output never depends on n
TOP = 1.0 - 2.0**-40  # see SessionStream._rebuild


def event(event_type: str, user_id: str, **fields: object) -> dict:
    """One event without id and time (the stream stamps those), fields in a fixed order."""
    return {"event_id": "", "type": event_type, "timestamp": 0, "user_id": user_id, **fields}


def _buffered(rng: np.random.Generator, draw: str) -> Callable[[], float]:
    """Return a zero-argument function giving the next number of an endless stream.

    numpy calls cost ~1 us each; drawing 64k at a time and handing out Python floats keeps
    the per-event cost tiny while staying a pure function of the seed.
    """
    chunks = (getattr(rng, draw)(_CHUNK).tolist() for _ in count())
    return chain.from_iterable(chunks).__next__


class SessionStream:
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
        self._novelty = np.zeros(n_it)
        self._trending = np.zeros(0, dtype=np.int64)
        self._refreshes = 0
        self._released_until = 0
        self._available = world._available & (world._release_at <= 0)
        self._n_avail = int(self._available.sum())
        # Users whose taste drifted: user index -> (cluster, latent vector).
        self._tastes: dict[int, tuple[int, np.ndarray]] = {}
        self._bias = [(1.0 + p) ** -self.cfg.position_decay for p in range(100)]
        self._log_stay = (
            math.log(1.0 - 1.0 / self.cfg.session_steps) if (self.cfg.session_steps > 1) else None
        )
        self.sessions = self.recs = self.anons = 0
        # Ratings profile: the items each user rated (a user rates an item once).
        self._rated: dict[int, set[int]] = {}
        self._rebuild()

    def drift(self, events_so_far: int = 0) -> None:
        """Advance popularity one step: random walk plus phased trending items; release the
        items whose time has come."""
        cfg, rng = self.cfg, self._rng_drift
        if cfg.release_fraction > 0:
            released = self.w._release_at <= events_so_far
            self._available = self.w._available & released
            self._n_avail = int(self._available.sum())
            if cfg.novelty_boost > 0:
                # Items released during the log start popular and fade (exp of their age).
                age = np.maximum(events_so_far - self.w._release_at, 0)
                late = released & (self.w._release_at > 0)
                self._novelty = np.where(
                    late, cfg.novelty_boost * np.exp(-age / cfg.novelty_span), 0.0
                )
        self._walk *= 1.0 - cfg.drift_reversion
        self._walk += rng.normal(0.0, cfg.drift_sigma, self._walk.size)
        self._boost *= cfg.trend_decay
        if self._refreshes % cfg.trend_phase == 0:
            pool = np.flatnonzero(self._available)
            self._trending = rng.choice(pool, min(cfg.n_trending, pool.size), replace=False)
        self._boost[self._trending] += cfg.trend_boost / cfg.trend_phase
        self._refreshes += 1
        self._rebuild()

    def _rebuild(self) -> None:
        # Cumulative weights as Python lists: bisect on them is far cheaper than numpy.
        w = self.w
        logpop = w._base_logpop + self._walk + self._boost + self._novelty
        # Tables are (cdf, top), top just under cdf[-1]: bisect_right(cdf, u * top) is a valid
        # index for u < 1 and never a zero-weight item. Unavailable items get -inf before the
        # max shift, so every table's largest weight is 1 and none underflows to all zeros.
        logpop = np.where(self._available, logpop, -np.inf)
        pop = np.cumsum(np.exp(logpop - logpop.max()))
        self._pop = (pop.tolist(), float(pop[-1]) * TOP)
        taste = self.cfg.taste_sharpness * w._cluster_pref + logpop
        taste = np.cumsum(np.exp(taste - taste.max(axis=1, keepdims=True)), axis=1)
        self._taste = [(row, row[-1] * TOP) for row in taste.tolist()]

    def session(self, tries: int = 0) -> list[dict]:
        """All events of one new session, reversed (last event first), without ids/times.
        Never empty (``tries``: sessions of a ratings log found empty so far)."""
        w, cfg, u = self.w, self.cfg, self.uniform
        user = bisect_right(w._user_cdf, u() * w._user_top)
        cluster, latent = self._taste_of(user)
        pref = w._item_latent @ latent / w._scale + w._item_cat_aff[cluster]
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
        taste = self._taste[cluster]
        if cfg.ratings_only:
            rated = self._ratings(user, uid, sid, steps, taste, rel)
            if not rated and tries < 20:
                # The user's draws were all rated already: another user has a session.
                return self.session(tries + 1)
            if not rated:
                # A world so small that its users rated all they would: they start over.
                self._rated[user].clear()
                rated = self._ratings(user, uid, sid, steps, taste, rel)
            return rated
        login_at = int(u() * steps) if uid != known and u() < cfg.login_prob else -1
        out: list[dict] = []
        basket: list[int] = []
        for step in range(steps):
            draw = u()
            if draw < cfg.direct_prob:
                self._direct(out, uid, sid, bisect_right(taste[0], u() * taste[1]), rel)
            elif draw < cfg.direct_prob + cfg.search_prob:
                item = bisect_right(taste[0], u() * taste[1])
                out.append(
                    event(
                        "click",
                        uid,
                        item_id=w._item_ids[item],
                        session_id=sid,
                        context={"device": device, "page": "search"},
                    )
                )
                self._convert(out, uid, sid, item, rel[item], basket)
            else:
                self._impression(out, uid, sid, device, taste, rel, basket)
            if step == login_at:  # after >= 1 anonymous event, so the anon id exists
                out.append(
                    event(
                        "login",
                        known,
                        previous_user_id=uid,
                        session_id=sid,
                        context={"device": device},
                    )
                )
                uid = known
        if basket and u() < cfg.checkout_prob:
            for item in basket:  # bought together: one taste, so "also bought" is learnable
                qty = 1 + int(u() < 0.2) + int(u() < 0.05)
                out.append(
                    event(
                        "buy",
                        uid,
                        item_id=w._item_ids[item],
                        value=qty,
                        price=w._prices[item],
                        session_id=sid,
                    )
                )
                self._maybe_rate(out, uid, sid, item, rel[item])
        out.reverse()
        return out

    def _ratings(
        self,
        user: int,
        uid: str,
        sid: str,
        steps: int,
        taste: tuple[list[float], float],
        rel: list[float],
    ) -> list[dict]:
        """A session of a ratings log, reversed: ``steps`` items the user has not rated yet
        (drawn by taste, a few retries each), each rated 1-5 stars by relevance."""
        u, ids = self.uniform, self.w._item_ids
        rated = self._rated.setdefault(user, set())
        out: list[dict] = []
        for _ in range(steps):
            for _ in range(4):
                item = bisect_right(taste[0], u() * taste[1])
                if item not in rated:
                    rated.add(item)
                    stars = self._stars(rel[item])
                    out.append(event("rate", uid, item_id=ids[item], value=stars, session_id=sid))
                    break
        out.reverse()
        return out

    def _taste_of(self, user: int) -> tuple[int, np.ndarray]:
        """The user's current (cluster, latent vector); with ``taste_drift``, it may move
        halfway towards another cluster at the start of a session."""
        w = self.w
        current = self._tastes.get(user)
        if current is None:
            current = (int(w._user_cluster[user]), w._user_latent[user])
        if self.cfg.taste_drift > 0 and self.uniform() < self.cfg.taste_drift:
            cluster = int(self.uniform() * len(w._centroids))
            current = (cluster, 0.5 * current[1] + 0.5 * w._centroids[cluster])
            self._tastes[user] = current
        return current

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
            event(
                "impression",
                uid,
                items=[ids[i] for i in shown],
                session_id=sid,
                recommendation_id=rid,
                context={"device": device, "page": page},
            )
        )
        clicks, bias, scale = 0, self._bias, cfg.click_scale
        for pos, item in enumerate(shown):
            if u() < scale * bias[pos] * rel[item]:
                out.append(
                    event(
                        "click",
                        uid,
                        item_id=ids[item],
                        session_id=sid,
                        recommendation_id=rid,
                        context={"device": device, "page": page, "position": pos},
                    )
                )
                self._convert(out, uid, sid, item, rel[item], basket)
                clicks += 1
                if clicks == cfg.max_clicks:
                    break
        if u() < cfg.blacklist_prob:
            worst = min(shown, key=rel.__getitem__)
            out.append(event("blacklist", uid, item_id=ids[worst], session_id=sid))

    def _convert(
        self, out: list[dict], uid: str, sid: str, item: int, rel: float, basket: list[int]
    ) -> None:
        """After a click: media is consumed, products go to the basket (bought at checkout)."""
        if self.uniform() >= self.cfg.conversion_scale * rel:
            return
        item_id = self.w._item_ids[item]
        if self.w._is_media[item]:
            fraction = round(min(1.0, max(0.0, rel + 0.2 * self.normal())), 3)
            out.append(event("consume", uid, item_id=item_id, value=fraction, session_id=sid))
            self._maybe_rate(out, uid, sid, item, rel)
        elif item not in basket:
            out.append(event("basket", uid, item_id=item_id, session_id=sid))
            basket.append(item)

    def _direct(self, out: list[dict], uid: str, sid: str, item: int, rel: list[float]) -> None:
        """A conversion that no click on the item preceded."""
        item_id = self.w._item_ids[item]
        if self.w._is_media[item]:
            out.append(
                event(
                    "consume",
                    uid,
                    item_id=item_id,
                    value=round(min(1.0, rel[item] + 0.2), 3),
                    session_id=sid,
                )
            )
        else:
            out.append(
                event(
                    "buy", uid, item_id=item_id, value=1, price=self.w._prices[item], session_id=sid
                )
            )
        self._maybe_rate(out, uid, sid, item, rel[item])

    def _maybe_rate(self, out: list[dict], uid: str, sid: str, item: int, rel: float) -> None:
        if self.uniform() < self.cfg.rate_prob:
            stars = self._stars(rel)
            out.append(
                event("rate", uid, item_id=self.w._item_ids[item], value=stars, session_id=sid)
            )

    def _stars(self, rel: float) -> int:
        """1-5 stars for an item of relevance ``rel`` to the user, with some noise."""
        return min(5, max(1, round(1.0 + 4.0 * rel + 0.7 * self.normal())))
