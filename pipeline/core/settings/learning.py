"""Settings of what the agents learn and how readers rank: trending, personal lists,
related items, scenarios, ranking, segments. Part of :class:`pipeline.core.settings.Settings`
(the only place defaults are written)."""

from __future__ import annotations

import math
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings

from pipeline.core.events import EVENT_TYPES
from pipeline.core.ids import valid_id

DEFAULT_WINDOWS = {"1h": 3600.0, "1d": 86400.0, "7d": 604800.0}
# The longest pairing window (settings related_*_window_s): a century, in seconds.
MAX_WINDOW_S = 100 * 365 * 86400
DEFAULT_EVENT_WEIGHTS = {
    "click": 1.0,
    "basket": 2.0,
    "consume": 3.0,
    "buy": 4.0,
    "rate": 2.0,
    "impression": 0.0,
    "blacklist": 0.0,
    "login": 0.0,
}
# Which event types feed which trending kind. A ``rate`` counts only from
# ``positive_rating`` up (pipeline.core.feedback).
DEFAULT_TRENDING_KINDS = {
    "clicks": ["click"],
    "conversions": ["buy", "consume", "basket", "rate"],
}


class LearningSettings(BaseSettings):
    """Models, their windows and weights, and what readers serve from them."""

    # --- trending ----------------------------------------------------------------------
    trending_windows: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_WINDOWS),
        description="Window name -> half-life in seconds.",
    )
    trending_kinds: dict[str, list[str]] = Field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_TRENDING_KINDS.items()},
        description="Trending kind -> event types that feed it.",
    )
    trending_max_items: int = Field(
        1000, ge=10, description="Items kept per trending sorted set (memory bound)."
    )
    event_weights: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_EVENT_WEIGHTS),
        description="Weight of one event of each type.",
    )
    positive_rating: float = Field(
        4.0, description="Ratings from this value up count as positive feedback."
    )

    # --- personal recommendations ------------------------------------------------------
    foryou_size: int = Field(
        50, ge=1, le=1000, description="Items kept in each user's precomputed 'for you' list."
    )
    foryou_batch_budget_ms: float = Field(
        25.0,
        ge=0,
        description="Longest a batch spends recomputing for-you lists while messages wait behind "
        "it (or it is full); the rest wait for later batches, first come first served "
        "(0: no limit).",
    )
    user_ttl_s: int = Field(
        90 * 86400,
        ge=60,
        description="Idle users' history, factors and lists expire after this many seconds.",
    )
    max_cached_users: int = Field(
        200_000,
        ge=100,
        description="Users a personal worker keeps in memory; others are reloaded from Redis.",
    )
    dedup_window_s: int = Field(
        3600,
        ge=0,
        description="Event ids seen within this many seconds are applied once (client retries); 0 disables.",
    )
    dedup_max_ids: int = Field(
        200_000,
        ge=1,
        description="Event ids remembered per agent group at most (newest kept): bounds the "
        "memory of de-duplication at high rates.",
    )
    mf_factors: int = Field(32, ge=2, le=512, description="Latent factors of the personal model.")
    mf_learning_rate: float = Field(0.1, gt=0, le=1, description="SGD step of the personal model.")
    mf_l2: float = Field(0.002, ge=0, description="L2 penalty of the personal model's factors.")
    mf_negatives: int = Field(
        4, ge=0, le=100, description="Items sampled as negatives per positive event."
    )
    mf_impression_weight: float = Field(
        0.0,
        ge=0,
        description="Weight of a shown, not clicked item as a negative for the factors (0: off).",
    )
    mf_seed: int = Field(
        42, ge=0, description="Seed of initial vectors and negative sampling (reproducible runs)."
    )
    # 4 since the afternoon of 2026-12-06, with related_discount 0.3 (see there): with 3,
    # co-occurrence alone beat the blend on the 1995 log with its catalog (0.3625 against
    # 0.3616); with 4 the blend reads 0.3677 there.
    neighbour_weight: float = Field(
        4.0, ge=0, description="Weight of 'neighbours of recent history' in the for-you blend."
    )
    neighbour_relations: dict[str, float] = Field(
        default_factory=lambda: {
            "also_clicked": 1.0,
            "also_bought": 1.0,
            "viewed_then_bought": 1.0,
        },
        description="Weight of each related-items relation among the neighbours of recent history.",
    )
    neighbour_items: int = Field(
        10, ge=1, le=100, description="Recent items of a user whose neighbours are blended in."
    )
    recent_weight: float = Field(
        0.0,
        ge=0,
        description="Weight of recently viewed, not yet converted items in the for-you blend.",
    )
    recent_window_s: int = Field(
        3600, ge=1, description="How far back 'recently viewed' reaches, in seconds."
    )
    cold_start_interactions: int = Field(
        3, ge=0, description="Users with fewer interactions get trending items blended in."
    )
    cold_start_trending_weight: float = Field(
        0.5, ge=0, description="Weight of trending items in a cold user's list."
    )
    cold_start_half_life_s: float = Field(
        86400.0, gt=0, description="Half-life of the popularity behind cold users' lists."
    )
    history_length: int = Field(50, ge=1, le=1000, description="Recent interactions kept per user.")
    history_max_age_s: int = Field(
        30 * 86400,
        ge=60,
        description="Interactions older than this (behind the user's newest) leave the history.",
    )
    history_max_excluded: int = Field(
        1000,
        ge=1,
        description="Bought, consumed, rated and blacklisted items remembered per user, never "
        "recommended to them (the oldest, blacklists aside, goes first).",
    )

    # --- related items ------------------------------------------------------------------
    related_max_neighbours: int = Field(
        200, ge=10, description="Partners kept per item and relation."
    )
    # 0.3 since the afternoon of 2026-12-06 (docs/performance.md, "Evaluation speed and
    # quality"): against 0.4, related items scored higher on every log (the dense, default,
    # 1995, ratings and MovieLens-shaped ones), and with neighbour_weight 4 so did the
    # for-you blend but on the default log (0.5186 against 0.5200); 0.2 helped the ratings
    # logs more but let co-occurrence alone beat the blend on the 1995 log.
    related_discount: float = Field(
        0.3,
        ge=0,
        le=2,
        description="Popularity discount exponent of related items: count / (popularity + 1) ** discount.",
    )
    # The pairing windows are at most a century (MAX_WINDOW_S): compiled pairing adds them
    # to times as 64-bit milliseconds, where a larger one would overflow.
    related_click_window_s: int = Field(
        2 * 3600,
        ge=1,
        le=MAX_WINDOW_S,
        description="Clicks of one user this close together are 'also clicked'.",
    )
    related_buy_window_s: int = Field(
        30 * 86400,
        ge=1,
        le=MAX_WINDOW_S,
        description="Conversions of one user this close together are 'also bought'.",
    )
    related_view_window_s: int = Field(
        86400,
        ge=1,
        le=MAX_WINDOW_S,
        description="A click this long before a conversion is 'viewed then bought'.",
    )

    # --- new items (the catalog's created_at) -------------------------------------------------
    new_item_days: float = Field(
        7.0,
        gt=0,
        description="Items created (catalog created_at) this many days before now or later, "
        "and not more than max_future_skew_s after it, are new: for-you lists weigh them up "
        "(now: the latest event the worker learned), scenarios' exploration offers them (now: "
        "the request's time); items without created_at are never new.",
    )
    new_item_weight: float = Field(
        1.0,
        ge=0,
        description="A new item's positive factor-model score counts 1 + this many times in "
        "for-you lists (0: new items ranked like any other).",
    )

    freshness_rate: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Learning rate of the for-you factor model's freshness prior (0: off). "
        "Above 0, an item with a created_at counts a bias of its age (powers of two "
        "seconds), learned from every event, so the lists weigh an item's age by what it "
        "said on this site so far (docs/content.md).",
    )

    # --- content (item text) ------------------------------------------------------------------
    content_dim: int = Field(
        256,
        ge=16,
        le=4096,
        description="Size of items' hashed TF-IDF content vectors (changing it invalidates "
        "stored vectors: they are then ignored until items are published again).",
    )
    content_text_fields: list[str] = Field(
        default_factory=lambda: ["title", "description"],
        description="Item fields read as text: `title`, or the name of a string (or list of "
        "strings) attribute.",
    )
    content_neighbours: int = Field(
        20, ge=1, le=200, description="Most similar items kept per item (similar_content)."
    )
    content_taste_weight: float = Field(
        0.0,
        ge=0,
        description="Content in the for-you lists (0: off). Above 0, catalog items with text "
        "join the factor model from their look-alikes, and the cosine of an item's text with "
        "the user's recent items' texts is blended in with this weight, fading as the item "
        "gathers events (docs/content.md).",
    )
    content_factor_rate: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Learning rate of the words' factors in the for-you factor model (0: "
        "off). Above 0, an item with text counts as its own factors plus its words', learned "
        "from every event of items with text, so an item nobody has touched yet scores by "
        "what its words mean to the user (docs/content.md).",
    )
    content_refresh_users: int = Field(
        1000,
        ge=0,
        description="With content on, when items with text join, the lists of this many most "
        "recently active users of the worker are recomputed (in the background, within the "
        "list budgets), so a new item reaches them before their next event (0: only then).",
    )
    content_min_similarity: float = Field(
        0.05,
        ge=0,
        lt=1,
        description="Least cosine similarity of item texts for an item to be a content neighbour.",
    )

    # --- scenarios and attribution ------------------------------------------------------------
    scenarios_file: Path = Field(
        Path("scenarios.yaml"),
        description="Scenario definitions (scenarios.yaml) the reader serves.",
    )
    exploration_max_events: int = Field(
        20,
        ge=1,
        description="New items with this many positive events or more have been seen enough: "
        "exploration stops offering them.",
    )
    attribution_window_s: int = Field(
        7 * 86400,
        ge=60,
        description="A conversion without a recommendation_id is credited to the recommendation "
        "whose item the user clicked at most this long before.",
    )
    stats_retention_days: int = Field(
        31, ge=1, le=400, description="Days scenario statistics are kept (the longest window)."
    )

    # --- personalised ranking (click model) ---------------------------------------------------
    ranking_n_bits: int = Field(
        20,
        ge=10,
        le=26,
        description="Hashed feature space of the click model is 2**n_bits (changing it invalidates stored weights).",
    )
    ranking_learning_rate: float = Field(
        0.05,
        gt=0,
        le=1,
        description="Base step of the click model (AdaGrad: a feature's step is this over the root of its summed squared gradients).",
    )
    ranking_l2: float = Field(1e-6, ge=0, description="L2 penalty of the click model.")
    ranking_seed: int = Field(
        42,
        description="Hash salt of the click model's features (changing it invalidates stored weights).",
    )
    ranking_impression_weight: float = Field(
        0.3, ge=0, description="Weight of a shown-not-yet-clicked item as a negative."
    )
    ranking_click_weight: float = Field(1.0, ge=0, description="Weight of a click as a positive.")

    # --- user segments -----------------------------------------------------------------------
    segments_half_life_s: float = Field(
        30 * 86400.0,
        gt=0,
        description="Half-life of user affinities for items and attribute values.",
    )
    segments_max_users: int = Field(
        10_000, ge=10, description="Users kept per segment (highest affinity)."
    )
    segments_max_attributes: int = Field(
        32, ge=1, description="Category and attribute segments one item's events feed, at most."
    )

    @field_validator("trending_windows")
    @classmethod
    def _windows_positive(cls, value: dict[str, float]) -> dict[str, float]:
        if not value:
            raise ValueError("at least one trending window is needed")
        for name, half_life in value.items():
            # Window names become parts of Redis keys and query values.
            if not valid_id(name) or ":" in name:
                raise ValueError(f"window name {name!r} must be an id without ':'")
            if not math.isfinite(half_life) or half_life <= 0:
                raise ValueError(f"half-life of window {name!r} must be a positive finite number")
        return value

    @field_validator("event_weights")
    @classmethod
    def _weights_finite(cls, value: dict[str, float]) -> dict[str, float]:
        for name, weight in value.items():
            if name not in EVENT_TYPES:
                raise ValueError(f"unknown event type {name!r} in event_weights")
            if not math.isfinite(weight) or weight < 0:
                raise ValueError(f"weight of {name!r} must be a finite number >= 0")
        return value

    @field_validator("trending_kinds")
    @classmethod
    def _kinds_valid(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for kind, types in value.items():
            if not valid_id(kind) or ":" in kind:
                raise ValueError(f"trending kind name {kind!r} must be an id without ':'")
            unknown = set(types) - EVENT_TYPES
            if unknown:
                raise ValueError(f"trending kind {kind!r}: unknown event types {sorted(unknown)}")
        return value
