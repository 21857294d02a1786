"""Kafka connection security (pipeline.stream.kafka.kafka_security): the aiokafka arguments for
each protocol and mechanism, the same for Faust's worker, the producer and the admin client,
and the settings that feed them (parsed from the environment, secrets never printed)."""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import Iterator
from typing import Any

import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from pydantic import ValidationError

from pipeline.core.settings import ENV_PREFIX, load_settings, to_env
from pipeline.stream.app import faust_app
from pipeline.stream.kafka import apply_topics, faust_credentials, kafka_security, new_producer

SASL = {"kafka_sasl_username": "svc-pipeline", "kafka_sasl_password": "s3cret-pass"}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.upper().startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    yield


def test_plaintext_by_default() -> None:
    settings = load_settings()
    assert settings.kafka_security_protocol == "PLAINTEXT"
    assert kafka_security(settings) == {"security_protocol": "PLAINTEXT"}
    assert faust_credentials(settings) is None


def test_ssl_verifies_the_broker() -> None:
    options = kafka_security(load_settings(kafka_security_protocol="SSL"))
    assert set(options) == {"security_protocol", "ssl_context"}
    assert options["security_protocol"] == "SSL"
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_ssl_with_a_missing_ca_file_fails_at_once(tmp_path: Any) -> None:
    settings = load_settings(
        kafka_security_protocol="SSL", kafka_ssl_cafile=str(tmp_path / "absent.pem")
    )
    with pytest.raises(FileNotFoundError):
        kafka_security(settings)


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_plaintext(mechanism: str) -> None:
    settings = load_settings(
        kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_mechanism=mechanism, **SASL
    )
    assert kafka_security(settings) == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": mechanism,
        "sasl_plain_username": "svc-pipeline",
        "sasl_plain_password": "s3cret-pass",
    }


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_ssl(mechanism: str) -> None:
    settings = load_settings(
        kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism=mechanism, **SASL
    )
    options = kafka_security(settings)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == mechanism
    assert options["sasl_plain_username"] == "svc-pipeline"
    assert options["sasl_plain_password"] == "s3cret-pass"
    assert isinstance(options["ssl_context"], ssl.SSLContext)


def _comparable(options: dict[str, Any]) -> dict[str, Any]:
    """Options with the TLS context replaced by whether there is one (contexts are built
    per call, so two equal configurations give two different objects)."""
    return {
        key: (isinstance(value, ssl.SSLContext) if key == "ssl_context" else value)
        for key, value in options.items()
        if not (key == "ssl_context" and value is None)
    }


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"kafka_security_protocol": "SSL"},
        {"kafka_security_protocol": "SASL_PLAINTEXT", **SASL},
        {"kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "SCRAM-SHA-512", **SASL},
    ],
    ids=["plaintext", "ssl", "sasl_plaintext", "sasl_ssl"],
)
def test_faust_worker_connects_like_every_other_client(overrides: dict[str, Any]) -> None:
    settings = load_settings(**overrides)
    app = faust_app(settings, "security-test", tuned=False)
    # What Faust's consumer and producer pass to aiokafka.
    faust_options = credentials_to_aiokafka_auth(app.conf.broker_credentials, app.conf.ssl_context)
    assert _comparable(faust_options) == _comparable(kafka_security(settings))


def test_producer_gets_the_security_options() -> None:
    settings = load_settings(
        kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_mechanism="SCRAM-SHA-256", **SASL
    )

    async def build() -> Any:
        # aiokafka clients are built inside a running loop; nothing connects before start().
        return new_producer(settings).client

    client = asyncio.run(build())
    assert client._security_protocol == "SASL_PLAINTEXT"
    assert client._sasl_mechanism == "SCRAM-SHA-256"
    assert client._sasl_plain_username == "svc-pipeline"
    assert client._sasl_plain_password == "s3cret-pass"


def test_topics_admin_client_gets_the_security_options(monkeypatch: pytest.MonkeyPatch) -> None:
    """`pipeline topics apply` hands kafka_security to the admin client it builds."""
    import aiokafka.admin

    built: dict[str, Any] = {}

    class Refused(Exception):
        pass

    class Admin:
        def __init__(self, **kwargs: Any) -> None:
            built.update(kwargs)

        async def start(self) -> None:
            raise Refused

    monkeypatch.setattr(aiokafka.admin, "AIOKafkaAdminClient", Admin)
    settings = load_settings(kafka_security_protocol="SASL_PLAINTEXT", **SASL)
    with pytest.raises(Refused):
        asyncio.run(apply_topics(settings.kafka_bootstrap, [], kafka_security(settings)))
    assert built["security_protocol"] == "SASL_PLAINTEXT"
    assert built["sasl_plain_password"] == "s3cret-pass"


# --- settings ---------------------------------------------------------------------------------


def test_security_settings_parse_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPELINE_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("PIPELINE_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("PIPELINE_KAFKA_SASL_USERNAME", "svc")
    monkeypatch.setenv("PIPELINE_KAFKA_SASL_PASSWORD", "kafka-pass")
    monkeypatch.setenv("PIPELINE_KAFKA_SSL_CAFILE", "/etc/pipeline/ca.pem")
    monkeypatch.setenv("PIPELINE_KAFKA_SSL_CERTFILE", "/etc/pipeline/client.pem")
    monkeypatch.setenv("PIPELINE_KAFKA_SSL_KEYFILE", "/etc/pipeline/client.key")
    monkeypatch.setenv("PIPELINE_REDIS_PASSWORD", "redis-pass")
    monkeypatch.setenv("PIPELINE_REDIS_USERNAME", "pipeline")
    monkeypatch.setenv("PIPELINE_REDIS_SSL_CAFILE", "/etc/pipeline/redis-ca.pem")
    settings = load_settings()
    assert settings.kafka_security_protocol == "SASL_SSL"
    assert settings.kafka_sasl_mechanism == "SCRAM-SHA-512"
    assert settings.kafka_sasl_username == "svc"
    assert settings.kafka_sasl_password.get_secret_value() == "kafka-pass"
    assert settings.kafka_ssl_cafile == "/etc/pipeline/ca.pem"
    assert settings.kafka_ssl_certfile == "/etc/pipeline/client.pem"
    assert settings.kafka_ssl_keyfile == "/etc/pipeline/client.key"
    assert settings.redis_password.get_secret_value() == "redis-pass"
    assert settings.redis_username == "pipeline"
    assert settings.redis_ssl_cafile == "/etc/pipeline/redis-ca.pem"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"kafka_security_protocol": "TLS"}, "kafka_security_protocol"),
        ({"kafka_sasl_mechanism": "GSSAPI"}, "kafka_sasl_mechanism"),
        ({"kafka_security_protocol": "SASL_SSL"}, "kafka_sasl_username"),
        (
            {"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_sasl_username": "svc"},
            "kafka_sasl_password",
        ),
        ({"kafka_ssl_keyfile": "/k.pem"}, "kafka_ssl_certfile"),
    ],
)
def test_incomplete_or_unknown_security_is_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        load_settings(**overrides)


def test_passwords_never_printed_but_reach_child_processes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = load_settings(
        kafka_security_protocol="SASL_SSL",
        redis_password="redis-pass",
        **SASL,
    )
    for text in (repr(settings), str(settings), str(settings.model_dump())):
        assert "s3cret-pass" not in text and "redis-pass" not in text
    env = to_env(settings)
    assert env["PIPELINE_KAFKA_SASL_PASSWORD"] == "s3cret-pass"
    assert env["PIPELINE_REDIS_PASSWORD"] == "redis-pass"
    # A child process built from that environment connects the same way.
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    child = load_settings()
    assert kafka_security(child)["sasl_plain_password"] == "s3cret-pass"
