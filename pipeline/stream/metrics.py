"""Prometheus metrics of the agents (served on ``PIPELINE_WORKER_METRICS_PORT``)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

MESSAGES = Counter("pipeline_messages_total", "Kafka messages taken by agents", ["agent"])
APPLIED = Counter("pipeline_records_applied_total", "Records applied to Redis", ["agent"])
REJECTED = Counter(
    "pipeline_records_rejected_total", "Records sent to the dead-letter topic", ["agent"]
)
REPLAYED = Counter(
    "pipeline_messages_replayed_total", "Messages skipped by the offset fence", ["agent"]
)
BATCH_SECONDS = Histogram("pipeline_batch_seconds", "Time to apply one batch", ["agent"])
