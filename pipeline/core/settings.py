"""Settings: one frozen object, built by :func:`load_settings`, never at import time.

This is the only place where defaults are written: every feature builds its configuration
from these fields and has no defaults of its own.

Every field can be set from the environment with the ``PIPELINE_`` prefix
(``PIPELINE_REDIS_URL=redis://...``); mappings take JSON
(``PIPELINE_TRENDING_WINDOWS='{"1h": 3600}'``). ``docker-compose.yml`` uses the same names.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any, TypeVar

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipeline.core.events import EVENT_TYPES
from pipeline.core.feedback import Feedback
from pipeline.core.ids import valid_id

ENV_PREFIX = "PIPELINE_"
C = TypeVar("C")

DEFAULT_WINDOWS = {"1h": 3600.0, "1d": 86400.0, "7d": 604800.0}
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


class Settings(BaseSettings):
    """Everything an operator can tune. Frozen: pass a new object instead of mutating."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="ignore")

    # --- where things are -------------------------------------------------------------
    kafka_bootstrap: str = Field(
        "127.0.0.1:9092", description="Kafka bootstrap servers, host:port[,host:port]."
    )
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis URL for all state.")
    topics_file: Path = Field(Path("topics.yaml"), description="Topic declarations (topics.yaml).")
    key_prefix: str = Field(
        "rec", description="Namespace of every Redis key; lets several deployments share a Redis."
    )
    app_id: str = Field("pipeline", description="Prefix of Faust app ids and consumer groups.")
    topic_prefix: str = Field(
        "",
        description="Prefix added to every topic name of topics.yaml (isolates tests and tenants).",
    )

    # --- HTTP services (loopback by default: expose deliberately) ----------------------
    reader_host: str = Field("127.0.0.1", description="Reader bind address.")
    reader_port: int = Field(8000, ge=0, le=65535, description="Reader port.")
    collector_host: str = Field("127.0.0.1", description="Collector bind address.")
    collector_port: int = Field(8001, ge=0, le=65535, description="Collector port.")
    collector_max_events: int = Field(
        500, ge=1, description="Most events one POST /v1/events may carry."
    )
    reader_max_body_bytes: int = Field(
        262_144,
        ge=1024,
        description="Largest request body the reader accepts (rank requests); larger ones get 413.",
    )
    collector_max_body_bytes: int = Field(
        1_048_576, ge=1024, description="Largest accepted request body."
    )
    worker_metrics_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="Port of a worker's Prometheus /metrics (0: off; one port per worker process).",
    )
    worker_metrics_host: str = Field(
        "127.0.0.1", description="Bind address of the worker's metrics server."
    )
    redis_timeout_s: float = Field(
        0.5,
        gt=0,
        description="Redis connect/read timeout of the HTTP services; past it they answer 503.",
    )

    # --- agents ------------------------------------------------------------------------
    batch_size: int = Field(
        1000, ge=1, description="Most messages an agent folds into one Redis transaction."
    )
    batch_ms: int = Field(
        100, ge=1, description="Longest an agent waits to fill a batch, in milliseconds."
    )
    worker_uvloop: bool = Field(
        True, description="Run workers on uvloop, a faster event loop than asyncio's own."
    )
    worker_max_poll_records: int = Field(
        2000, ge=1, description="Most records a worker's consumer takes from one fetch."
    )
    worker_fetch_max_wait_ms: int = Field(
        50,
        ge=0,
        le=60_000,
        description="Longest a worker's fetch waits for new messages (low: fresh lists on a "
        "broker that holds fetches for the whole wait, as the embedded one does).",
    )
    worker_stream_buffer: int = Field(
        16384,
        ge=1,
        description="Messages a worker buffers per partition before it pauses fetching.",
    )
    broker_session_timeout_s: float = Field(
        6.0,
        gt=0,
        description="Consumer session timeout (short: the local broker waits half the rebalance timeout on join).",
    )
    broker_rebalance_timeout_s: float = Field(6.0, gt=0, description="Consumer rebalance timeout.")
    broker_heartbeat_interval_s: float = Field(
        1.0, gt=0, description="Consumer heartbeat interval."
    )
    max_future_skew_s: float = Field(
        300.0, ge=0, description="Events stamped further than this in the future are rejected."
    )

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
        description="Longest a full batch (messages waiting) spends recomputing for-you lists; "
        "the rest wait for later batches, first come first served (0: no limit).",
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
    neighbour_weight: float = Field(
        3.0, ge=0, description="Weight of 'neighbours of recent history' in the for-you blend."
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
        description="Bought/blacklisted items remembered per user (oldest purchase first out).",
    )

    # --- related items ------------------------------------------------------------------
    related_max_neighbours: int = Field(
        200, ge=10, description="Partners kept per item and relation."
    )
    related_discount: float = Field(
        0.4,
        ge=0,
        le=2,
        description="Popularity discount exponent of related items: count / (popularity + 1) ** discount.",
    )
    related_click_window_s: int = Field(
        2 * 3600, ge=1, description="Clicks of one user this close together are 'also clicked'."
    )
    related_buy_window_s: int = Field(
        30 * 86400,
        ge=1,
        description="Conversions of one user this close together are 'also bought'.",
    )
    related_view_window_s: int = Field(
        86400, ge=1, description="A click this long before a conversion is 'viewed then bought'."
    )
    related_partners: int = Field(
        10, ge=1, description="Recent items an event is paired with (per relation)."
    )

    # --- personalised ranking (click model) ---------------------------------------------------
    ranking_n_bits: int = Field(
        20,
        ge=10,
        le=26,
        description="Hashed feature space of the click model is 2**n_bits (changing it invalidates stored weights).",
    )
    ranking_learning_rate: float = Field(
        0.05, gt=0, le=1, description="SGD step of the click model."
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

    @field_validator("key_prefix")
    @classmethod
    def _prefix_safe(cls, value: str) -> str:
        if not value or any(ch in value for ch in " {}*?[]\n\t"):
            raise ValueError(
                "key_prefix must be non-empty without spaces, braces or glob characters"
            )
        return value

    @property
    def feedback(self) -> Feedback:
        """The feedback rule with these weights and this rating threshold."""
        return Feedback(weights=self.event_weights, positive_rating=self.positive_rating)

    @property
    def faust_broker(self) -> str:
        return ";".join(f"kafka://{host}" for host in self.kafka_bootstrap.split(","))


def config_of(cls: type[C], settings: Settings, prefix: str, **given: Any) -> C:
    """A feature's configuration (a dataclass) from settings: each field ``name`` not in
    ``given`` is the setting ``prefix + name``. Feature configs have no defaults of their own;
    this is how they get the operator's values."""
    values = {
        field.name: getattr(settings, prefix + field.name)
        for field in dataclasses.fields(cls)  # type: ignore[arg-type]
        if field.name not in given
    }
    return cls(**values, **given)


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment; keyword overrides win over it."""
    return Settings(**overrides)


def describe_settings() -> list[tuple[str, str, str]]:
    """(environment variable, default, description) of every setting, for docs and --help."""
    rows = []
    for name, field in Settings.model_fields.items():
        default = field.default_factory() if field.default_factory else field.default  # type: ignore[call-arg]
        # Mappings print as JSON: the form the environment variable takes.
        text = json.dumps(default) if isinstance(default, dict | list) else str(default)
        rows.append((ENV_PREFIX + name.upper(), text, field.description or ""))
    return rows


def to_env(settings: Settings) -> dict[str, str]:
    """The environment that rebuilds ``settings`` in a child process."""
    env = {}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        text = json.dumps(value) if isinstance(value, dict | list) else str(value)
        env[ENV_PREFIX + name.upper()] = text
    return env
