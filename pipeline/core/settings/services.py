"""Settings of where things are and how the services run: addresses, HTTP, access, the
worker's consumption. Part of :class:`pipeline.core.settings.Settings` (the only place
defaults are written)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings

from pipeline.core.deadletters import DEAD_LETTER_VALUE_BYTES, MAX_DEAD_LETTER_VALUE_BYTES
from pipeline.core.events import MAX_BATCH_EVENTS, MAX_MESSAGE_BYTES


class ServiceSettings(BaseSettings):
    """Addresses, HTTP services, API keys and CORS, agents' consumption."""

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
    reader_related_cache_ms: int = Field(
        1000,
        ge=0,
        le=60_000,
        description="How long a reader keeps an item's related list (ranked in Redis from "
        "every stored partner) before ranking it again; items that become unavailable leave "
        "it at once. 0: every request ranks.",
    )
    reader_trending_cache_ms: int = Field(
        500,
        ge=0,
        le=60_000,
        description="How long a reader keeps a trending list before reading it again (scores "
        "are still decayed to each request's time; the for-you fallback and scenarios read "
        "the same lists); items that become unavailable leave it at once, and a list shorter "
        "than asked is read again at every request. 0: every request reads the set.",
    )
    collector_max_body_bytes: int = Field(
        1_048_576, ge=1024, description="Largest accepted request body."
    )
    http_body_timeout_s: float = Field(
        10.0,
        gt=0,
        description="Longest the reader and collector wait for a request body to arrive "
        "once its headers are in; a slower (or stalled) body gets 408 and the connection "
        "is closed.",
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
    log_format: Literal["text", "json"] = Field(
        "text",
        description="Log lines of the worker, reader, collector and dev: text, or json (one "
        "object per line: time, level, logger, service, message, exception); secrets masked.",
    )
    redis_timeout_s: float = Field(
        0.5,
        gt=0,
        description="Redis connect/read timeout of the HTTP services; past it they answer 503.",
    )
    # Off by default: the page embeds an API key, so only a local stack (pipeline dev) shows it.
    demo_page: bool = Field(
        False,
        description="Serve the demo page /demo on the reader (it embeds the first API key).",
    )

    # --- HTTP access: API keys and CORS (docs/security.md) ------------------------------
    # Keys are secrets: repr=False keeps them out of printed settings; they are checked
    # (length, characters) when an app is built, so no error message ever echoes one.
    read_api_keys: list[str] = Field(
        default_factory=list,
        repr=False,
        description="API keys that may read (/v1 of the reader), as a JSON list; no keys "
        "at all (read and write lists empty) turns authentication off.",
    )
    write_api_keys: list[str] = Field(
        default_factory=list,
        repr=False,
        description="API keys that may write (/v1 of the collector) and read, as a JSON list.",
    )
    require_api_keys: bool = Field(
        False,
        description="Refuse to start a reader or collector that has no API key to check "
        "(production: docker-compose.yml sets it).",
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Browser origins allowed to call the services (CORS), as a JSON list, "
        'e.g. ["https://shop.example"]; empty sends no CORS headers.',
    )

    # --- agents ------------------------------------------------------------------------
    batch_size: int = Field(
        5000, ge=1, description="Most messages an agent folds into one Redis transaction."
    )
    batch_bytes: int = Field(
        1_500_000,
        ge=0,
        description="Most message bytes an agent folds into one Redis transaction (at least "
        "one message; 0: no bound). With PIPELINE_BATCH_SIZE it bounds a batch by the events "
        "it holds, whether they come one per message or in envelopes. Larger batches apply "
        "a backlog faster (repeated users and items merge) but hold Redis longer per "
        "transaction.",
    )
    batch_ms: int = Field(
        50,
        ge=1,
        description="Longest a batch's first message waits for more to join it, in "
        "milliseconds, from when it was read (read while the previous batch is applied). "
        "Lower: fresher lists at a moderate rate, more (smaller) transactions.",
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
    worker_stop_timeout_s: float = Field(
        20.0,
        gt=0,
        description="Longest a worker's graceful stop (SIGTERM, SIGINT) may take; past it "
        "the worker exits at once with code 75, leaving the batch in hand unacknowledged "
        "(it is delivered again; offset fences skip what was applied).",
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
    # --- bad input (docs/operations.md, "Dead letters") ----------------------------------
    max_message_bytes: int = Field(
        MAX_MESSAGE_BYTES,
        ge=1024,
        description="Largest event message an agent parses; larger ones are dead letters "
        "('message too large') without being parsed.",
    )
    max_envelope_events: int = Field(
        MAX_BATCH_EVENTS,
        ge=1,
        description="Most events one message (a JSON array, the batch envelope) may hold; "
        "longer ones are one dead letter ('envelope too long'), no element is validated.",
    )
    dead_letter_max_value_bytes: int = Field(
        DEAD_LETTER_VALUE_BYTES,
        ge=64,
        le=MAX_DEAD_LETTER_VALUE_BYTES,
        description="A dead letter keeps the whole rejected message up to this size; of a "
        "larger one it keeps this many first bytes, the size and a sha256 (not replayable).",
    )

    # --- connection security: Kafka SASL/TLS, Redis password/TLS (docs/operations.md) -----
    # Passwords are SecretStr: printed settings and logs show '**********', never the value.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT",
        description="How every Kafka client connects: PLAINTEXT, SSL (TLS), SASL_PLAINTEXT "
        "(SASL without TLS) or SASL_SSL (SASL over TLS).",
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "PLAIN",
        description="SASL mechanism when the protocol is SASL_PLAINTEXT or SASL_SSL.",
    )
    kafka_sasl_username: str = Field(
        "", description="SASL user name (required with SASL_PLAINTEXT and SASL_SSL)."
    )
    kafka_sasl_password: SecretStr = Field(
        SecretStr(""),
        description="SASL password (required with SASL_PLAINTEXT and SASL_SSL; never logged).",
    )
    kafka_ssl_cafile: str = Field(
        "",
        description="CA bundle (PEM) that signs the brokers' certificates, with SSL and "
        "SASL_SSL; empty: the system's trust store.",
    )
    kafka_ssl_certfile: str = Field(
        "",
        description="Client certificate (PEM) for brokers that require mutual TLS; empty: none.",
    )
    kafka_ssl_keyfile: str = Field(
        "",
        description="Private key (PEM) of kafka_ssl_certfile, unless the certificate file "
        "holds it.",
    )
    redis_password: SecretStr = Field(
        SecretStr(""),
        description="Redis password (AUTH), used when PIPELINE_REDIS_URL carries none; "
        "never logged. Empty: no password.",
    )
    redis_username: str = Field(
        "", description="Redis ACL user name for redis_password; empty: the default user."
    )
    redis_ssl_cafile: str = Field(
        "",
        description="CA bundle (PEM) that signs the Redis server's certificate, for "
        "rediss:// URLs (TLS); empty: the system's trust store.",
    )

    @field_validator("key_prefix")
    @classmethod
    def _prefix_safe(cls, value: str) -> str:
        if not value or any(ch in value for ch in " {}*?[]\n\t"):
            raise ValueError(
                "key_prefix must be non-empty without spaces, braces or glob characters"
            )
        return value

    @model_validator(mode="after")
    def _kafka_credentials_complete(self) -> ServiceSettings:
        # Without this a SASL client fails at connect with a vague authentication error.
        if self.kafka_security_protocol.startswith("SASL_") and not (
            self.kafka_sasl_username and self.kafka_sasl_password.get_secret_value()
        ):
            raise ValueError(
                f"kafka_security_protocol {self.kafka_security_protocol} needs "
                "kafka_sasl_username and kafka_sasl_password"
            )
        if self.kafka_ssl_keyfile and not self.kafka_ssl_certfile:
            raise ValueError("kafka_ssl_keyfile is set without kafka_ssl_certfile")
        return self

    @field_validator("cors_origins")
    @classmethod
    def _origins_exact(cls, value: list[str]) -> list[str]:
        # Browsers send Origin as scheme://host[:port], never with a path: an entry with a
        # trailing slash or a path would silently match nothing.
        for origin in value:
            scheme, sep, rest = origin.partition("://")
            if origin != "*" and (
                scheme not in ("http", "https") or not sep or not rest or "/" in rest
            ):
                raise ValueError(
                    f"CORS origin {origin!r} must be scheme://host[:port] "
                    "(http or https, no path or trailing slash) or *"
                )
        return value
