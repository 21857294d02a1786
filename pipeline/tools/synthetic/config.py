"""The synthetic generator's knobs: one frozen dataclass, every knob with its meaning."""

from __future__ import annotations

from dataclasses import dataclass


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
    popularity_spread: float = 1.0  # std of base log-popularity: larger is a longer tail
    # Chance per session that a user's taste moves halfway towards another cluster's.
    taste_drift: float = 0.0
    # Share of items released during the log (not before): new items keep arriving. Their
    # catalog created_at is their release time, spread evenly over release_span events.
    release_fraction: float = 0.0
    release_span: int = 100_000
    # Log-popularity an item released during the log has at its release, fading by a factor
    # e every novelty_span events (news, drops, listings: consumed while fresh).
    novelty_boost: float = 0.0
    novelty_span: int = 10_000
    # Sessions of ratings alone (a ratings log such as MovieLens): each step rates one item
    # the user has not rated yet, drawn by taste, 1-5 stars from how much the user likes it;
    # no impressions, clicks, baskets, anonymous ids or logins.
    ratings_only: bool = False
    # Timestamps are rounded down to a multiple of this (1000: whole seconds, as many logs
    # record them, so a burst of ratings shares its timestamps).
    timestamp_step_ms: int = 1

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
            "taste_drift",
            "release_fraction",
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
        if not self.popularity_spread > 0 or self.release_span < 1:
            raise ValueError("popularity_spread must be > 0 and release_span >= 1")
        if self.timestamp_step_ms < 1:
            raise ValueError("timestamp_step_ms must be >= 1")
        if self.novelty_boost < 0 or self.novelty_span < 1:
            raise ValueError("novelty_boost must be >= 0 and novelty_span >= 1")


# Named profiles for `pipeline generate --profile`. "dense" has what real logs have and the
# default lacks: hundreds of events per user, thousands of items with a long popularity tail,
# ratings on most conversions, tastes that drift, and items released during the log.
PROFILES: dict[str, dict[str, object]] = {
    "default": {},
    "dense": {
        "n_users": 2000,
        "n_items": 3000,
        "n_categories": 40,
        "n_clusters": 20,
        "popularity_spread": 2.0,
        "taste_drift": 0.02,
        "release_fraction": 0.2,
        "release_span": 300_000,
        "rate_prob": 0.8,
        "session_steps": 5.0,
        "concurrent_sessions": 50,
    },
    # "fresh": a steady stream of new items consumed while they are new (news, drops,
    # listings): 90% of the items are released during the log, each popular at its release
    # and fading within about 10,000 events, with a short popularity tail, so that which new
    # item a user picks is mostly taste, which the item's text tells.
    "fresh": {
        "n_users": 2000,
        "n_items": 3000,
        "n_categories": 40,
        "n_clusters": 20,
        "popularity_spread": 0.5,
        "taste_drift": 0.02,
        "release_fraction": 0.9,
        "release_span": 300_000,
        "novelty_boost": 3.0,
        "novelty_span": 10_000,
        "session_steps": 5.0,
        "concurrent_sessions": 50,
    },
    # "listings": classifieds, jobs, flats: 15,000 items, nearly all released during the
    # log, each fading within about 2,000 events, so most conversions of a new item come
    # while it has few events or none, and what it is like (its text) is most of what is
    # known about it.
    "listings": {
        "n_users": 2000,
        "n_items": 15000,
        "n_categories": 40,
        "n_clusters": 20,
        "popularity_spread": 0.5,
        "taste_drift": 0.02,
        "release_fraction": 0.98,
        "release_span": 150_000,
        "novelty_boost": 3.0,
        "novelty_span": 2_000,
        "session_steps": 5.0,
        "concurrent_sessions": 50,
    },
    # "ratings": a ratings log (MovieLens-like): ratings alone, in sessions of about 20, with
    # whole-second timestamps that a session's ratings share; over 300,000 events about 150
    # ratings per user on average (a median of about 120, a few users over 1,000), 3,500
    # items with a long tail, tastes that drift. Every rating of 4 or 5 is a conversion of an
    # item the user never met: about half the events are evaluation cases.
    "ratings": {
        "n_users": 2000,
        "n_items": 3500,
        "n_categories": 40,
        "n_clusters": 20,
        "popularity_spread": 1.5,
        "taste_drift": 0.02,
        "anonymous_fraction": 0.0,
        "session_steps": 20.0,
        "concurrent_sessions": 20,
        "ratings_only": True,
        "timestamp_step_ms": 1000,
    },
}


def profile(name: str, **overrides: object) -> SyntheticConfig:
    """The config of a named profile (``PROFILES``), with ``overrides`` on top."""
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; known: {', '.join(PROFILES)}")
    return SyntheticConfig(**{**PROFILES[name], **overrides})  # type: ignore[arg-type]
