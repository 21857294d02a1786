"""Service discovery for the integration tests (README, "Tests").

In order: URLs from the environment (``PIPELINE_TEST_KAFKA``, ``PIPELINE_TEST_REDIS_URL``);
containers through testcontainers when a Docker engine answers; else the embedded broker
and redis-server on free ports. Unit tests never touch this fixture.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.core.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Services:
    kafka_bootstrap: str
    redis_url: str
    kind: str  # "env", "containers" or "embedded"


def _containers() -> Iterator[Services] | None:
    try:
        import docker

        docker.from_env().ping()
    except Exception:
        return None

    def run() -> Iterator[Services]:
        from testcontainers.kafka import KafkaContainer
        from testcontainers.redis import RedisContainer

        with KafkaContainer().with_kraft() as kafka, RedisContainer() as redis:
            host = redis.get_container_host_ip()
            port = redis.get_exposed_port(6379)
            yield Services(kafka.get_bootstrap_server(), f"redis://{host}:{port}/0", "containers")

    return run()


def _embedded() -> Iterator[Services]:
    from pipeline.tools.local import free_port, start_broker, start_redis

    broker = start_broker(free_port())
    try:
        redis = start_redis(free_port())
    except Exception:
        broker.stop()
        raise
    try:
        yield Services(broker.url, redis.url, "embedded")
    finally:
        redis.stop()
        broker.stop()


@pytest.fixture(scope="session")
def services() -> Iterator[Services]:
    kafka = os.environ.get("PIPELINE_TEST_KAFKA")
    redis_url = os.environ.get("PIPELINE_TEST_REDIS_URL")
    if kafka and redis_url:
        yield Services(kafka, redis_url, "env")
        return
    provider = _containers() or _embedded()
    yield from provider


@pytest.fixture
def isolated(services: Services) -> Settings:
    """Settings with their own topics, keys and consumer groups: tests never share state."""
    tag = f"t{uuid.uuid4().hex[:10]}"
    return load_settings(
        kafka_bootstrap=services.kafka_bootstrap,
        redis_url=services.redis_url,
        topic_prefix=f"{tag}.",
        key_prefix=tag,
        app_id=tag,
        topics_file=ROOT / "topics.yaml",
        scenarios_file=ROOT / "scenarios.yaml",
        batch_ms=50,
    )
