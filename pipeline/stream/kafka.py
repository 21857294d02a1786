"""Kafka clients in one place: the producer every publisher uses, topic administration, and
the connection security (TLS, SASL) every client of the pipeline gets from
:func:`kafka_security`.

No idempotence and no transactions: the embedded broker (Tansu) cannot hand out producer
ids. Replays are harmless because agents fence offsets and events carry unique ids.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.helpers import create_ssl_context

from pipeline.core.settings import Settings
from pipeline.core.topics import TopicSpec


def kafka_ssl_context(settings: Settings) -> ssl.SSLContext:
    """A client TLS context: brokers verified against ``kafka_ssl_cafile`` (or the system's
    trust store), host names checked, a client certificate when mutual TLS asks for one."""
    return create_ssl_context(
        cafile=settings.kafka_ssl_cafile or None,
        certfile=settings.kafka_ssl_certfile or None,
        keyfile=settings.kafka_ssl_keyfile or None,
    )


def kafka_security(settings: Settings) -> dict[str, Any]:
    """The aiokafka keyword arguments (producer, consumer, admin client) that make a client
    connect as the settings say: ``security_protocol``, with TLS an ``ssl_context``, with
    SASL the mechanism, user and password. Every Kafka client of the pipeline takes these;
    the Faust worker gets the same through :func:`faust_credentials`."""
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = kafka_ssl_context(settings)
    if protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        # aiokafka takes the SCRAM credentials under the same ``sasl_plain_*`` names.
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = settings.kafka_sasl_password.get_secret_value()
    return options


def faust_credentials(settings: Settings) -> Any:
    """:func:`kafka_security` as Faust's ``broker_credentials`` (None: plaintext); Faust
    turns them back into the same aiokafka arguments for its consumer and producer."""
    # Imported here: publishers (the collector) use this module and never load Faust.
    from faust.auth import SASLCredentials, SSLCredentials

    options = kafka_security(settings)
    protocol = options["security_protocol"]
    if protocol == "SSL":
        return SSLCredentials(options["ssl_context"])
    if protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        return SASLCredentials(
            username=options["sasl_plain_username"],
            password=options["sasl_plain_password"],
            ssl_context=options.get("ssl_context"),
            mechanism=options["sasl_mechanism"],
        )
    return None


def new_producer(settings: Settings, linger_ms: int = 10) -> AIOKafkaProducer:
    """A producer (not started) that waits for every in-sync replica."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        linger_ms=linger_ms,
        acks="all",
        enable_idempotence=False,
        **kafka_security(settings),
    )


@asynccontextmanager
async def kafka_producer(settings: Settings) -> AsyncIterator[AIOKafkaProducer]:
    """A started producer, stopped (and flushed) on exit."""
    producer = new_producer(settings)
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


@dataclass(frozen=True, slots=True)
class TopicDifference:
    topic: str
    setting: str
    declared: str
    actual: str

    def __str__(self) -> str:
        return f"{self.topic}: {self.setting} is {self.actual} on the broker, {self.declared} in topics.yaml"


async def apply_topics(
    bootstrap: str, specs: Iterable[TopicSpec], security: Mapping[str, Any] | None = None
) -> tuple[list[str], list[TopicDifference]]:
    """Create the missing topics; return (created names, differences of existing ones).
    ``security``: :func:`kafka_security` of the settings (None: plaintext).

    Idempotent: a second run creates nothing. Existing topics are never altered; their
    differences from the file are reported for the operator to act on.
    """
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    specs = list(specs)
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=10_000, **(security or {})
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [spec for spec in specs if spec.name not in existing]
        if missing:
            await admin.create_topics(
                [
                    NewTopic(
                        name=spec.name,
                        num_partitions=spec.partitions,
                        replication_factor=spec.replication,
                        topic_configs=spec.configs,
                    )
                    for spec in missing
                ]
            )
        differences: list[TopicDifference] = []
        present = [spec for spec in specs if spec.name in existing]
        if present:
            described = await admin.describe_topics([spec.name for spec in present])
            partitions_of = {entry["topic"]: len(entry["partitions"]) for entry in described}
            for spec in present:
                actual = partitions_of.get(spec.name)
                if actual is not None and actual != spec.partitions:
                    differences.append(
                        TopicDifference(spec.name, "partitions", str(spec.partitions), str(actual))
                    )
        return [spec.name for spec in missing], differences
    finally:
        await admin.close()
